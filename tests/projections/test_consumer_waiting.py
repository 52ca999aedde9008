"""When a consumer reads again and when it waits for the store's notifier.

After a short batch it waits at once if the notifier knows of nothing newer
(no empty read in between), and reads again at once if the head moved while
it was handling the batch: neither costs latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings
from projections.documents import InMemoryDocumentStore
from store.memory import InMemoryEventStore, InMemoryLeases
from store.protocol import NewEvent, RecordedEvent
from tests.wiring import wait_for

# Polls far apart: anything quicker than this was woken by the notifier.
SLOW_POLL = ConsumerSettings(batch_size=10, poll_interval=30.0, lease_ttl=90.0)


class CountingStore(InMemoryEventStore):
    """Counts ``read_all`` calls and how many came back empty."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.empty_reads = 0

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        found = await super().read_all(after_position, limit, stream_id=stream_id, types=types)
        self.reads += 1
        self.empty_reads += not found
        return found


class Appender:
    """Appends one more event while handling the first batch it sees."""

    name = "appender"

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store
        self.seen: list[int] = []

    async def prepare(self) -> None:
        return None

    def accepts(self, event: RecordedEvent) -> bool:
        return True

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        if not self.seen:
            await append(self.store, 1, start=100)
        self.seen += [e.position for e in events if e.position is not None]


async def append(store: InMemoryEventStore, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        version = await store.stream_version("s")
        await store.append("s", "thing", version, [NewEvent(f"e-{i}", "Happened", {"i": i})])


async def append_commit(store: InMemoryEventStore, count: int) -> None:
    version = await store.stream_version("s")
    events = [NewEvent(f"c-{version + i}", "Happened", {"i": i}) for i in range(count)]
    await store.append("s", "thing", version, events)


def consumer(store: InMemoryEventStore, handler: Appender) -> Consumer:
    checkpoints = CheckpointStore(InMemoryDocumentStore())
    return Consumer(handler, store, checkpoints, InMemoryLeases(), settings=SLOW_POLL)


async def test_a_short_batch_is_not_followed_by_an_empty_read() -> None:
    store = CountingStore()
    handler = Appender(InMemoryEventStore())  # appends elsewhere: nothing new here
    await append(store, 3)
    one = consumer(store, handler)
    one.start()
    try:
        await wait_for(lambda: one.position == 3)
        await append_commit(store, 12)  # one commit: a full batch of 10, then 2
        await wait_for(lambda: one.position == 15)
        await asyncio.sleep(0.05)
        assert handler.seen == list(range(1, 16))
        assert store.empty_reads == 0
        # The shared log reads up to 500 events at a time: the second read held
        # the whole commit, and the batches of 10 and 2 were cut from it.
        assert store.reads == 2
    finally:
        await one.stop()


async def test_events_appended_while_handling_a_batch_are_read_at_once() -> None:
    store = CountingStore()
    handler = Appender(store)
    await append(store, 2)
    one = consumer(store, handler)
    one.start()
    try:
        await wait_for(lambda: one.position == 3, timeout=2.0)  # long before a poll
        assert handler.seen == [1, 2, 3]
    finally:
        await one.stop()
