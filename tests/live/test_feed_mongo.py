"""The feed on the real store: MongoEventStore + sequencer on the embedded database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from projections.hub import Hub
from projections.live import Feed
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.protocol import RecordedEvent
from store.sequencer import Sequencer
from tests.live.helpers import append, take


@pytest.fixture
async def feed(mongo_db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[Feed]:
    store = MongoEventStore(mongo_db)
    await store.ensure_indexes()
    sequencer = Sequencer(store, MongoLeases(mongo_db), poll_interval=0.02)
    stamping = asyncio.create_task(sequencer.run())
    feed = Feed(store, Hub(), notifier=store.notifier, batch_size=7, poll_interval=0.02)
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()
        sequencer.stop()
        await asyncio.wait_for(stamping, 10)


async def test_concurrent_writers_are_seen_once_in_position_order(feed: Feed) -> None:
    """Five writers commit while a subscriber catches up from 0 and then goes live."""
    await append(feed.store, "account-0", 10)

    async def writer(n: int) -> None:
        for _ in range(10):
            await append(feed.store, f"account-{n}")
            await asyncio.sleep(0.005)

    writers = asyncio.gather(*(writer(n) for n in range(1, 6)))
    stream = feed.events(0)
    received: list[RecordedEvent] = await take(stream, 60, within=60)
    await writers
    await stream.aclose()
    assert [event.position for event in received] == list(range(1, 61))
    for n in range(6):
        versions = [e.version for e in received if e.stream_id == f"account-{n}"]
        assert versions == list(range(1, 11))
    assert feed.hub.subscriber_count() == 0
