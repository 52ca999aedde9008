"""Shared fixtures: an embedded MongoDB (nx-27017) per test session, a fresh database per test.

The wiring's fixtures (``wiring``, ``memory``, ``backend``) come from ``tests/wiring.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from runtime.embedded import EmbeddedMongo

pytest_plugins = ("tests.wiring",)


@pytest.fixture(scope="session")
def embedded_mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    """One nx-27017 process for the whole session, stopped even when tests fail."""
    server = EmbeddedMongo(Path(tmp_path_factory.mktemp("nx")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mongo_url(embedded_mongo: EmbeddedMongo) -> str:
    return embedded_mongo.url


@pytest.fixture
async def mongo_db(mongo_url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A fresh, uniquely named database on the embedded server (PyMongo async)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        yield client[f"t_{uuid.uuid4().hex[:12]}"]
    finally:
        await client.close()
