"""The read side on the embedded MongoDB: real Mongo stores, a sequencer, document store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from projections.documents_mongo import MongoDocumentStore
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore
from store.sequencer import Sequencer
from tests.wiring import World

Database = AsyncDatabase[dict[str, Any]]


@contextlib.asynccontextmanager
async def mongo_world(database: Database, *, sequencer: bool = True) -> AsyncIterator[World]:
    """A ``World`` on ``database``; a sequencer task stamps positions while it is open."""
    store = MongoEventStore(database)
    snapshots, commands = MongoSnapshotStore(database), MongoCommandLog(database)
    leases = MongoLeases(database)
    for made in (store, snapshots, commands, leases):
        await made.ensure_indexes()
    documents = MongoDocumentStore(database, alias_ttl=0.0)
    world = World(store, snapshots, commands, documents, leases)
    stamping = Sequencer(store, leases, lease_ttl=2.0, poll_interval=0.02) if sequencer else None
    task = asyncio.create_task(stamping.run()) if stamping is not None else None
    try:
        yield world
    finally:
        if stamping is not None and task is not None:
            stamping.stop()
            await task
