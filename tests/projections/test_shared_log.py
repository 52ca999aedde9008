"""One read of the global order per process, and the database operations a deposit costs.

The consumers and the live feed of a process share one read per new batch
(``projections.consumer.SharedLog``); events stamped by this process's sequencer reach
them without a read; consumers whose handler ignores a batch hold its
checkpoint write back. Counted, never timed: ``read_all`` calls on the memory
store, database commands (a PyMongo command listener) on nx-27017.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from domain.accounts import Deposit
from projections.checkpoints import CheckpointStore
from projections.consumer import (
    SKIPPED_CHECKPOINT_DELAY,
    Consumer,
    ConsumerSettings,
    SharedLog,
    shared_log,
)
from projections.documents import InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.hub import Hub
from projections.live import Feed
from store.memory import InMemoryEventStore, InMemoryLeases
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import NewEvent, RecordedEvent
from store.sequencer import Sequencer
from tests.projections.test_idle import Commands
from tests.wiring import World, wait_for

Client = AsyncMongoClient[dict[str, Any]]
SETTINGS = ConsumerSettings(poll_interval=0.01, lease_ttl=60.0)


class CountingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.fail_next = False

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        self.reads += 1
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        return await super().read_all(after_position, limit, stream_id=stream_id, types=types)


class Recorder:
    def __init__(self, name: str, accepted: str | None = None) -> None:
        self.name = name
        self.accepted = accepted
        self.positions: list[int] = []

    async def prepare(self) -> None:
        return None

    def accepts(self, event: RecordedEvent) -> bool:
        return self.accepted is None or event.type == self.accepted

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        self.positions += [e.position for e in events if e.position is not None]


async def _append(store: InMemoryEventStore, count: int, kind: str = "Happened") -> None:
    for _ in range(count):
        version = await store.stream_version("s")
        await store.append("s", "t", version, [NewEvent(uuid.uuid4().hex, kind, {})])


async def test_readers_at_the_end_share_one_read_and_readers_behind_read_alone() -> None:
    store = CountingStore()
    await _append(store, 30)
    log = SharedLog(store, batch_size=10, keep=10)
    first, second = await asyncio.gather(log.read_all(0, 10), log.read_all(0, 10))
    assert [e.position for e in first] == list(range(1, 11)) == [e.position for e in second]
    assert store.reads == 1
    assert [e.position for e in await log.read_all(4, 3)] == [5, 6, 7]  # kept: no read
    assert store.reads == 1
    for after in (10, 20):
        await log.read_all(after, 10)
    assert log.end == 30  # trimmed to the latest events, positions still in place
    reads = store.reads
    behind = await log.read_all(0, 5)
    assert [e.position for e in behind] == [1, 2, 3, 4, 5]
    assert store.reads == reads + 1  # read alone, the kept run unchanged
    assert [e.position for e in await log.read_all(25, 10)] == [26, 27, 28, 29, 30]


async def test_a_failed_shared_read_reaches_every_waiting_reader_and_is_tried_again() -> None:
    store = CountingStore()
    await _append(store, 3)
    log = SharedLog(store)
    store.fail_next = True
    results = await asyncio.gather(log.read_all(0, 10), log.read_all(0, 10), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert [e.position for e in await log.read_all(0, 10)] == [1, 2, 3]


async def test_consumers_and_the_feed_of_a_process_read_each_batch_once() -> None:
    store = CountingStore()
    recorders = [Recorder(f"c{i}") for i in range(4)]
    checkpoints = CheckpointStore(InMemoryDocumentStore())
    leases = InMemoryLeases()
    consumers = [Consumer(r, store, checkpoints, leases, settings=SETTINGS) for r in recorders]
    feed = Feed(store, Hub(), notifier=store.notifier, poll_interval=0.01)
    assert shared_log(store) is shared_log(store)
    for consumer in consumers:
        consumer.start()
    await feed.start(0)
    try:
        await _append(store, 1)
        await wait_for(lambda: all(r.positions == [1] for r in recorders) and feed.position == 1)
        reads = store.reads
        for round_ in range(2, 6):
            await _append(store, 1)

            def reached(n: int = round_) -> bool:
                return all(r.positions[-1:] == [n] for r in recorders) and feed.position == n

            await wait_for(reached)
        assert store.reads - reads == 4  # one per new event, for five readers
    finally:
        await feed.stop()
        for consumer in consumers:
            await consumer.stop()


async def test_a_batch_the_handler_ignores_is_checkpointed_later_in_one_write() -> None:
    store = InMemoryEventStore()
    recorder = Recorder("picky", accepted="Wanted")
    checkpoints = CheckpointStore(InMemoryDocumentStore())
    consumer = Consumer(recorder, store, checkpoints, InMemoryLeases(), settings=SETTINGS)
    consumer.start()
    try:
        await _append(store, 3, kind="Ignored")
        await wait_for(lambda: consumer.position == 3)
        assert recorder.positions == []
        assert (await checkpoints.load("picky")).position == 0  # held back
        await _append(store, 1, kind="Wanted")
        await wait_for(lambda: recorder.positions == [4])
        assert (await checkpoints.load("picky")).position == 4  # the handled batch's write
        await _append(store, 2, kind="Ignored")
        await wait_for(lambda: consumer.position == 6)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (await checkpoints.load("picky")).position != 6:
            assert loop.time() - started < SKIPPED_CHECKPOINT_DELAY + 5.0
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


@pytest.fixture
async def counted(mongo_url: str) -> AsyncIterator[tuple[Client, Commands]]:
    commands = Commands()
    client: Client = AsyncMongoClient(mongo_url, event_listeners=[commands])
    try:
        yield client, commands
    finally:
        await client.close()


async def test_a_deposit_costs_at_most_13_database_commands_from_request_to_last_consumer(
    counted: tuple[Client, Commands],
) -> None:
    client, commands = counted
    database = client[f"t_{uuid.uuid4().hex[:12]}"]
    store = MongoEventStore(database)
    snapshots, command_log, leases = (
        MongoSnapshotStore(database), MongoCommandLog(database), MongoLeases(database)
    )  # fmt: skip
    for made in (store, snapshots, command_log, leases):
        await made.ensure_indexes()
    world = World(store, snapshots, command_log, MongoDocumentStore(database), leases)
    sequencer = Sequencer(store, leases, lease_ttl=60.0, poll_interval=0.02)
    stamping = asyncio.create_task(sequencer.run())
    group = world.group(settings=SETTINGS)
    feed = Feed(store, Hub(), notifier=store.notifier, poll_interval=0.01)
    group.start()
    await feed.start(0)
    consumers = [group[name] for name in group.names]
    try:
        account = await world.open_account(deposit=100)
        head = store.notifier.head
        await wait_for(lambda: all(c.position >= 2 for c in consumers), timeout=20.0)
        await asyncio.sleep(SKIPPED_CHECKPOINT_DELAY + 0.5)  # held-back writes done
        deposits = 5
        commands.counting = True
        for _ in range(deposits):
            await world.send(Deposit(account, 100))
            head += 1

            def handled(h: int = head) -> bool:
                return all(c.position >= h for c in consumers) and feed.position >= h

            await wait_for(handled, timeout=20.0)
            await asyncio.sleep(0.1)  # deposits 0.1 s apart: held-back writes coalesce
        await asyncio.sleep(SKIPPED_CHECKPOINT_DELAY + 0.5)
        commands.counting = False
    finally:
        await feed.stop()
        await group.stop()
        sequencer.stop()
        await asyncio.wait_for(stamping, 10)
    seen = commands.seen
    # Before: 26 (two sequencer passes of 3 reads and 2 writes each, one read of
    # the log per consumer and for the feed, a checkpoint write per consumer).
    # Now: append 1 (+1 the service's own, see below), sequencer 3, no log read,
    # read-model writes 4 (ledger: read + write), checkpoints 3 + held back.
    assert sum(seen.values()) <= 13 * deposits, seen
    # Per deposit the request's lookup and a backlog read (a log read per consumer
    # and the feed would add 30); plus the idle sequencer's polls meanwhile.
    assert seen[("find", "events")] <= 2 * deposits + 5, seen
