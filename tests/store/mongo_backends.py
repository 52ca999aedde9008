"""Mongo backends for the contract suite: PyMongo async and Motor on the embedded server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from store.driver import Database, close_client
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore
from tests.store.backends import Backend, FakeClock


def make_client(kind: str, url: str) -> Any:
    """A PyMongo async client or a Motor client for ``url``."""
    if kind == "motor":
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(url)
    return AsyncMongoClient[dict[str, Any]](url)


async def open_stores(database: Database, clock: FakeClock | None = None) -> dict[str, Any]:
    """The four Mongo stores on ``database``, indexes ensured."""
    events, leases = MongoEventStore(database), MongoLeases(database)
    if clock is not None:
        events, leases = (
            MongoEventStore(database, clock=clock),
            MongoLeases(database, clock_ms=clock.millis),
        )
    stores: dict[str, Any] = {
        "store": events,
        "snapshots": MongoSnapshotStore(database),
        "commands": MongoCommandLog(database),
        "leases": leases,
    }
    for made in stores.values():
        await made.ensure_indexes()
    return stores


@asynccontextmanager
async def mongo_backend(
    request: pytest.FixtureRequest, kind: str, clock: FakeClock
) -> AsyncIterator[Backend]:
    url: str = request.getfixturevalue("mongo_url")
    client = make_client(kind, url)
    try:
        database = client[f"t_{uuid.uuid4().hex[:12]}"]
        stores = await open_stores(database, clock)
        yield Backend(
            kind,
            stores["store"],
            stores["snapshots"],
            stores["commands"],
            stores["leases"],
            clock,
            extra={"database": database},
        )
    finally:
        await close_client(client)
