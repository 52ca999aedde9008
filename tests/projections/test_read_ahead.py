"""ReadAhead: reads run ahead of a slow writer, which gets them in growing chunks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from projections.rebuild import ReadAhead
from store.memory import InMemoryEventStore
from store.protocol import EventStore, RecordedEvent
from tests.live.helpers import append


class FailingReads(InMemoryEventStore):
    """Fails every read after the first ``good`` ones."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        if self.good == 0:
            raise ConnectionError("lost")
        self.good -= 1
        return await super().read_all(after_position, limit, stream_id=stream_id, types=types)


async def filled(store: EventStore, events: int) -> EventStore:
    await append(store, "thing-1", events)
    await store.sequence()
    return store


async def test_a_slow_writer_gets_everything_read_meanwhile_in_order() -> None:
    store = await filled(InMemoryEventStore(), 100)
    chunks: list[list[RecordedEvent]] = []
    async with ReadAhead(store, 0, 10, max_batches=5) as reads:
        while chunk := await reads.take(50):
            chunks.append(chunk)
            await asyncio.sleep(0.01)  # a slow write: the reader fills the queue meanwhile
    positions = [e.position for chunk in chunks for e in chunk]
    assert positions == list(range(1, 101))
    assert max(len(c) for c in chunks) >= 50  # batches merged up to the chunk size
    assert all(len(c) <= 50 + 9 for c in chunks)
    assert len(chunks) < 10  # fewer hand-overs than reads


async def test_starts_after_the_given_position_and_ends_empty() -> None:
    store = await filled(InMemoryEventStore(), 5)
    async with ReadAhead(store, 3, 2) as reads:
        assert [e.position for e in await reads.take(10)] == [4, 5]
        assert await reads.take(10) == []
        assert await reads.take(10) == []


async def test_a_failed_read_reaches_the_writer() -> None:
    store = await filled(FailingReads(good=1), 30)
    async with ReadAhead(store, 0, 10) as reads:
        assert len(await reads.take(10)) == 10
        with pytest.raises(ConnectionError):
            await reads.take(10)


async def test_leaving_early_stops_the_reader() -> None:
    store = await filled(InMemoryEventStore(), 50)
    before = len(asyncio.all_tasks())
    async with ReadAhead(store, 0, 5, max_batches=1) as reads:
        assert len(await reads.take(5)) == 5
    assert len(asyncio.all_tasks()) == before
