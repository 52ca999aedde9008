"""The feed rides out a database restart: no position skipped, no duplicate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from projections.hub import Hub
from projections.live import Feed
from runtime.embedded import EmbeddedMongo
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.sequencer import Sequencer
from tests.live.helpers import append, take


async def test_the_feed_resumes_after_the_database_comes_back(tmp_path: Path) -> None:
    database = EmbeddedMongo(tmp_path / "db")
    await asyncio.to_thread(database.start)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        database.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    store = MongoEventStore(client["outage"])
    sequencer = Sequencer(store, MongoLeases(client["outage"]), poll_interval=0.02)
    stamping = asyncio.create_task(sequencer.run())
    feed = Feed(store, Hub(), notifier=store.notifier, poll_interval=0.02)
    try:
        await store.ensure_indexes()
        await feed.start()
        stream = feed.events(0)
        await append(store, "account-a", 5)
        before = await take(stream, 5, within=20)
        await asyncio.to_thread(database.stop)
        await asyncio.sleep(1.0)  # the feed's reads fail meanwhile; it keeps its position
        await asyncio.to_thread(database.start)
        await append(store, "account-a", 5)
        after = await take(stream, 5, within=30)
        await stream.aclose()
        assert [e.position for e in before + after] == list(range(1, 11))
    finally:
        await feed.stop()
        sequencer.stop()
        await asyncio.wait_for(stamping, 20)
        await client.close()
        await asyncio.to_thread(database.stop)
