"""An idle process reads nothing it does not need, and still sees other processes' commits.

While the sequencer runs in a process it keeps the store's notifier current,
so consumers and the live feed wait on the notifier instead of polling the
store; the sequencer's own poll backs off while nothing happens. Counted with
a PyMongo command listener on nx-27017: database commands, not time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings
from projections.documents import InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.hub import Hub
from projections.live import Feed
from store.memory import InMemoryEventStore, InMemoryLeases
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.protocol import NewEvent, RecordedEvent
from store.sequencer import Sequencer
from tests.wiring import wait_for

Client = AsyncMongoClient[dict[str, Any]]
# A poll interval that, were it used, would show as dozens of reads per second.
FAST_POLL = ConsumerSettings(poll_interval=0.01, lease_ttl=30.0)


class Commands(monitoring.CommandListener):
    """Counts commands by (name, collection) while ``counting``."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if self.counting and isinstance(target, str):
            self.seen[(event.command_name, target)] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, collection: str) -> int:
        return sum(n for (_, name), n in self.seen.items() if name == collection)


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.positions: list[int] = []

    async def prepare(self) -> None:
        return None

    def accepts(self, event: RecordedEvent) -> bool:
        return True

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        self.positions += [e.position for e in events if e.position is not None]


class CountingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        self.reads += 1
        return await super().read_all(after_position, limit, stream_id=stream_id, types=types)


def _event(number: int) -> list[NewEvent]:
    return [NewEvent(f"e-{uuid.uuid4().hex}", "Happened", {"n": number})]


async def test_idle_consumer_and_feed_on_the_memory_store_do_not_poll() -> None:
    store = CountingStore()
    recorder = Recorder()
    consumer = Consumer(
        recorder, store, CheckpointStore(InMemoryDocumentStore()), InMemoryLeases(),
        settings=FAST_POLL,
    )  # fmt: skip
    feed = Feed(store, Hub(), notifier=store.notifier, poll_interval=0.01)
    consumer.start()
    await feed.start()
    try:
        await store.append("s", "t", 0, _event(1))
        await wait_for(lambda: recorder.positions == [1] and feed.position == 1)
        reads = store.reads
        await asyncio.sleep(0.5)  # 50 polls each, if they polled
        assert store.reads == reads
        await store.append("s", "t", 1, _event(2))
        await wait_for(lambda: recorder.positions == [1, 2] and feed.position == 2)
    finally:
        await feed.stop()
        await consumer.stop()


@pytest.fixture
async def two_clients(mongo_url: str) -> AsyncIterator[tuple[Client, Client, Commands, str]]:
    """This process's client (counted) and another process's, on a fresh database."""
    commands = Commands()
    ours: Client = AsyncMongoClient(mongo_url, event_listeners=[commands])
    theirs: Client = AsyncMongoClient(mongo_url)
    try:
        yield ours, theirs, commands, f"t_{uuid.uuid4().hex[:12]}"
    finally:
        await ours.close()
        await theirs.close()


async def test_an_idle_process_backs_off_and_still_sees_another_process_commit(
    two_clients: tuple[Client, Client, Commands, str],
) -> None:
    ours, theirs, commands, name = two_clients
    store, other = MongoEventStore(ours[name]), MongoEventStore(theirs[name])
    await store.ensure_indexes()
    await other.ensure_indexes()
    leases = MongoLeases(ours[name])
    sequencer = Sequencer(store, leases, poll_interval=0.01, idle_interval=0.2, lease_ttl=30.0)
    recorder = Recorder()
    checkpoints = CheckpointStore(MongoDocumentStore(ours[name]))
    consumer = Consumer(recorder, store, checkpoints, leases, settings=FAST_POLL)
    feed = Feed(store, Hub(), notifier=store.notifier, poll_interval=0.01)
    running = asyncio.create_task(sequencer.run())
    try:
        await other.append("s", "t", 0, _event(1))
        consumer.start()
        await feed.start(0)
        await wait_for(lambda: recorder.positions == [1] and feed.position == 1)
        await asyncio.sleep(0.5)  # the back-off reaches its ceiling
        commands.counting = True
        await asyncio.sleep(2.0)
        commands.counting = False
        # Sequencer: a backlog read per 0.2 s (plus the heads every 3 s) and no
        # lease renewal due. At the 0.01 s poll it would be about 600 commands.
        assert commands.on("events") <= 2.0 / 0.2 * 2, commands.seen
        assert commands.on("checkpoints") == 0, commands.seen
        # A commit from the other process: stamped by our sequencer's idle poll,
        # handed to the consumer and the feed by the notifier.
        await other.append("s", "t", 1, _event(2))
        await wait_for(lambda: recorder.positions == [1, 2] and feed.position == 2)
    finally:
        await feed.stop()
        await consumer.stop()
        sequencer.stop()
        await asyncio.wait_for(running, 10)
    assert store.notifier.watch_bound is None  # the watcher stopped: readers poll again
