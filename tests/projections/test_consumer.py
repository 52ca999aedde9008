"""The consumer runtime: poison events, operator retry, lease takeover, status, pause."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import pytest

from projections.checkpoints import CheckpointStore, ProgressBoard, StatusReporter, now_ms
from projections.consumer import Consumer
from projections.documents import FencedOut, InMemoryDocumentStore
from store.memory import InMemoryEventStore, InMemoryLeases
from store.protocol import LeaseHolder, NewEvent, RecordedEvent
from tests.projections.cluster import until
from tests.wiring import FAST, dump, memory_world, rebuilt, settle, wait_for


class Recorder:
    """Records every delivery; fails on the positions in ``broken``."""

    name = "recorder"

    def __init__(self, broken: Sequence[int] = ()) -> None:
        self.broken = set(broken)
        self.deliveries: list[int] = []
        self.applied: set[int] = set()
        self.batches: list[int] = []  # the size of each batch handed over

    async def prepare(self) -> None:
        return None

    def accepts(self, event: RecordedEvent) -> bool:
        return True

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        self.batches.append(len(events))
        for event in events:
            assert event.position is not None
            self.deliveries.append(event.position)
            if event.position in self.broken:
                raise RuntimeError(f"boom at {event.position}")
            self.applied.add(event.position)


async def durable(checkpoints: CheckpointStore, name: str, position: int) -> None:
    """Wait until ``name``'s durable checkpoint is at ``position`` (held-back writes land)."""

    async def reached() -> bool:
        return (await checkpoints.load(name)).position == position

    await until(reached, 5.0, f"{name}'s durable checkpoint never reached {position}", poll=0.01)


async def append_events(store: InMemoryEventStore, count: int) -> None:
    for i in range(count):
        await store.append(
            f"s-{i % 3}",
            "thing",
            await store.stream_version(f"s-{i % 3}"),
            [NewEvent(f"e-{i}", "Happened", {"i": i})],
        )


@dataclass
class Rig:
    """An in-memory store, leases and checkpoints that consumers under test share."""

    store: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    leases: InMemoryLeases = field(default_factory=InMemoryLeases)
    checkpoints: CheckpointStore = field(
        default_factory=lambda: CheckpointStore(InMemoryDocumentStore())
    )

    def consumer(self, handler: Recorder, owner: str = "a") -> Consumer:
        return Consumer(
            handler, self.store, self.checkpoints, self.leases, settings=FAST, owner=owner
        )


@contextlib.asynccontextmanager
async def running(*consumers: Consumer) -> AsyncIterator[None]:
    """Start ``consumers``; stop every one of them on the way out."""
    for one in consumers:
        one.start()
    try:
        yield
    finally:
        for one in consumers:
            await one.stop()


async def test_poison_event_stops_the_consumer_with_position_and_error() -> None:
    rig = Rig()
    await append_events(rig.store, 20)
    handler = Recorder(broken=[8])
    runner = rig.consumer(handler)
    async with running(runner):
        await wait_for(lambda: runner.state == "stopped_on_error")
        status = await runner.status()
        assert (status.checkpoint, status.error_position, status.lag_events) == (7, 8, 13)
        assert status.last_error == "RuntimeError: boom at 8"
        assert handler.applied == set(range(1, 8))  # nothing beyond the poison event
        reporter = StatusReporter(rig.store, rig.checkpoints, rig.leases, ["recorder"])
        durable = await reporter.report()
        assert durable[0].state == "stopped_on_error"
        assert (durable[0].error_position, durable[0].checkpoint) == (8, 7)
        await asyncio.sleep(0.1)
        assert max(handler.deliveries) <= 8  # it stays stopped, never skips

        handler.broken.clear()  # the operator fixed the bug
        runner.retry()
        await wait_for(lambda: runner.position == 20)
        assert handler.applied == set(range(1, 21))
        assert (await runner.status()).state == "running"


async def test_retry_can_be_requested_from_another_process() -> None:
    rig = Rig()
    await append_events(rig.store, 5)
    handler = Recorder(broken=[3])
    runner = rig.consumer(handler)
    async with running(runner):
        await wait_for(lambda: runner.state == "stopped_on_error")
        handler.broken.clear()
        await rig.checkpoints.request_retry("recorder")  # e.g. the CLI, through the database
        await wait_for(lambda: runner.position == 5)


async def test_standby_instance_takes_over_when_the_holder_dies() -> None:
    rig = Rig()
    first, second = Recorder(), Recorder()
    a, b = rig.consumer(first, "a"), rig.consumer(second, "b")
    a.start()
    await wait_for(lambda: a.state == "running")
    b.start()
    try:
        await append_events(rig.store, 30)
        await wait_for(lambda: a.position == 30)
        await durable(rig.checkpoints, "recorder", 30)
        assert b.state == "standby"
        assert not second.deliveries
        await a.stop(release=False)  # a crash: the lease stays until it expires
        await append_events(rig.store, 30)
        await wait_for(lambda: b.position == 60, timeout=FAST.lease_ttl * 5)
        assert first.applied | second.applied == set(range(1, 61))
        assert first.applied.isdisjoint(second.applied)  # nothing handled twice here
        holder = await rig.leases.holder("recorder")
        assert holder is not None
        assert holder.owner == "b"
    finally:
        await a.stop()
        await b.stop()


async def test_two_groups_share_the_work_and_survive_a_crash() -> None:
    world = memory_world()
    a, b = world.group(owner="a"), world.group(owner="b")
    a.start()
    b.start()
    try:
        accounts = [await world.open_account(f"o{i}", deposit=1_000) for i in range(4)]
        for i in range(10):
            await world.transfer(accounts[i % 4], accounts[(i + 1) % 4], 50 + i)
        await asyncio.sleep(0.05)
        for name in a.names:
            await a[name].stop(release=False)
        for i in range(10):
            await world.deposit(accounts[i % 4], 10)
            await world.transfer(accounts[(i + 2) % 4], accounts[i % 4], 25)
        await settle(b, world.store)
    finally:
        await a.stop()
        await b.stop()
    assert await dump(world.documents) == await rebuilt(world.store)
    transfers = (await dump(world.documents))["transfers"]
    assert {t["status"] for t in transfers} == {"COMPLETED"}
    ledger = (await dump(world.documents))["ledger"][0]
    assert ledger["total_balance"] == 4 * 1_000 + 10 * 10


async def test_status_reports_lag_and_states() -> None:
    world = memory_world()
    account = await world.open_account(deposit=100)
    group = world.group(names=("accounts", "ledger"))
    reporter = StatusReporter(world.store, world.checkpoints, world.leases, ["accounts", "ledger"])
    before = {s.name: s for s in await reporter.report()}
    assert before["accounts"].lag_events == 2
    assert before["accounts"].state == "stopped"
    assert before["accounts"].lag_seconds >= 0
    group.start()
    try:
        await settle(group, world.store)
        statuses = {s.name: s for s in await group.statuses()}
        assert statuses["accounts"].state == "running"
        assert (statuses["ledger"].checkpoint, statuses["ledger"].lag_events) == (2, 0)
        assert statuses["ledger"].lag_seconds == 0.0
        durable = {s.name: s for s in await reporter.report()}
        assert durable["accounts"].state == "running"
        assert durable["accounts"].owner
        await world.deposit(account, 5)
        await settle(group, world.store)
        assert (await reporter.report())[0].checkpoint == 3
    finally:
        await group.stop()
    assert (await reporter.report())[0].state == "stopped"


async def test_a_paused_consumer_stands_aside_until_the_pause_ends() -> None:
    rig = Rig()
    handler = Recorder()
    runner = rig.consumer(handler)
    async with running(runner):
        await wait_for(lambda: runner.state == "running")
        await rig.checkpoints.pause("recorder", now_ms() + 60_000, now_ms())
        await wait_for(lambda: runner.state == "rebuilding")
        assert await rig.leases.holder("recorder") is None
        await append_events(rig.store, 3)
        await asyncio.sleep(0.05)
        assert not handler.deliveries
        await rig.checkpoints.unpause("recorder")
        await wait_for(lambda: runner.position == 3)


class BoastingLeases(InMemoryLeases):
    """Reports success for every acquire, like a lease on a buggy server might."""

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> LeaseHolder | None:
        await super().acquire(name, owner, ttl_seconds)
        return LeaseHolder(name, owner, await self.clock_ms() + int(ttl_seconds * 1000), 99)


async def test_a_false_lease_success_is_caught_by_reading_the_holder() -> None:
    rig = Rig(leases=BoastingLeases())
    await rig.leases.acquire("recorder", "someone-else", 60)
    handler = Recorder()
    runner = rig.consumer(handler)
    async with running(runner):
        await append_events(rig.store, 3)
        await asyncio.sleep(0.1)
        assert runner.state == "standby"
        assert not handler.deliveries


class ManualClock:
    """Epoch milliseconds that move only when told: the lease store's clock."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class Stalling(Recorder):
    """Stalls inside its first batch until ``resume`` is set, like a process under SIGSTOP."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = asyncio.Event()
        self.resume = asyncio.Event()

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        if not self.inside.is_set():
            self.inside.set()
            await self.resume.wait()
        await super().handle_batch(events)


PACED = replace(FAST, checkpoint_interval=1.0)


def paced(
    rig: Rig, handler: Recorder, owner: str, progress: ProgressBoard | None = None
) -> Consumer:
    return Consumer(
        handler, rig.store, rig.checkpoints, rig.leases, settings=PACED, owner=owner,
        progress=progress,
    )  # fmt: skip


async def handle_one_by_one(rig: Rig, consumer: Consumer, count: int) -> None:
    """Append ``count`` events one at a time, each handled as its own batch."""
    for _ in range(count):
        target = consumer.position + 1

        def handled(n: int = target) -> bool:
            return consumer.position == n

        await append_events(rig.store, 1)
        await wait_for(handled)


async def test_a_lone_batch_is_checkpointed_at_once_and_a_quick_run_once_per_interval() -> None:
    rig, progress = Rig(), ProgressBoard()
    consumer = paced(rig, Recorder(), "a", progress)
    async with running(consumer):
        await handle_one_by_one(rig, consumer, 1)
        assert (await rig.checkpoints.load("recorder")).position == 1  # written at once

        await handle_one_by_one(rig, consumer, 3)  # within the interval: held back
        assert (await rig.checkpoints.load("recorder")).position == 1
        assert progress.position("recorder") == 4  # this process's waiters see it at once

        loop = asyncio.get_running_loop()
        started = loop.time()
        await durable(rig.checkpoints, "recorder", 4)  # one write once the interval is over
        assert loop.time() - started < PACED.checkpoint_interval + 1.0


async def test_a_crash_replays_only_what_was_handled_since_the_last_durable_checkpoint() -> None:
    rig = Rig()
    first, second = Recorder(), Recorder()
    a, b = paced(rig, first, "a"), paced(rig, second, "b")
    a.start()
    await wait_for(lambda: a.state == "running")
    b.start()
    try:
        await handle_one_by_one(rig, a, 1)  # durable at once
        await handle_one_by_one(rig, a, 3)  # held back
        await a.stop(release=False)  # a crash before the held-back write
        await append_events(rig.store, 2)
        await wait_for(lambda: b.position == 6, timeout=PACED.lease_ttl * 5)
        assert first.applied == {1, 2, 3, 4}
        assert second.applied == {2, 3, 4, 5, 6}  # from the durable checkpoint: 2-4 again
    finally:
        await b.stop()


async def test_stopping_writes_the_held_back_checkpoint() -> None:
    rig = Rig()
    consumer = paced(rig, Recorder(), "a")
    consumer.start()
    await handle_one_by_one(rig, consumer, 1)
    await handle_one_by_one(rig, consumer, 2)
    assert (await rig.checkpoints.load("recorder")).position == 1
    await consumer.stop()
    assert (await rig.checkpoints.load("recorder")).position == 3


async def test_events_arriving_within_the_batch_interval_are_handled_as_one_batch() -> None:
    rig, recorder = Rig(), Recorder()
    settings = replace(FAST, batch_interval=0.5)
    consumer = Consumer(recorder, rig.store, rig.checkpoints, rig.leases, settings=settings)
    async with running(consumer):
        await append_events(rig.store, 1)
        await wait_for(lambda: consumer.position == 1)  # after a quiet moment: read at once
        for _ in range(3):
            await append_events(rig.store, 1)
            await asyncio.sleep(0.01)
        await wait_for(lambda: consumer.position == 4)
    assert recorder.batches == [1, 3]


async def test_a_consumer_catching_up_reads_full_batches_without_waiting() -> None:
    rig, recorder = Rig(), Recorder()
    settings = replace(FAST, batch_size=10, batch_interval=5.0)
    await append_events(rig.store, 35)
    consumer = Consumer(recorder, rig.store, rig.checkpoints, rig.leases, settings=settings)
    async with running(consumer):
        # Three full batches and the rest, well inside one batch interval.
        await wait_for(lambda: consumer.position == 35, timeout=2.5)
    assert recorder.batches == [10, 10, 10, 5]


async def test_a_holder_paused_past_its_lease_is_fenced_out_and_stops_handling() -> None:
    clock = ManualClock()
    rig = Rig(leases=InMemoryLeases(clock_ms=clock))
    stalled, healthy = Stalling(), Recorder()
    a, b = rig.consumer(stalled, "a"), rig.consumer(healthy, "b")
    await append_events(rig.store, 3)
    async with running(a):
        await wait_for(lambda: stalled.inside.is_set())  # paused mid-batch, lease held
        async with running(b):
            await asyncio.sleep(0.05)
            assert b.state == "standby"  # the lease is live by the lease clock
            clock.now += int(FAST.lease_ttl * 1000) + 1  # ... until it is not
            await wait_for(lambda: b.position == 3)
            await append_events(rig.store, 3)
            await wait_for(lambda: b.position == 6)
            stalled.resume.set()  # the paused holder wakes up, finishes its batch
            await wait_for(lambda: a.state == "standby")
            await durable(rig.checkpoints, "recorder", 6)
            checkpoint = await rig.checkpoints.load("recorder")
            assert (checkpoint.owner, checkpoint.position) == ("b", 6)
            holder = await rig.leases.holder("recorder")
            assert holder is not None
            assert (holder.owner, holder.epoch) == ("b", checkpoint.epoch)
            await append_events(rig.store, 3)
            await wait_for(lambda: b.position == 9)
            await asyncio.sleep(0.05)
            assert stalled.applied == {1, 2, 3}  # the stale batch only, nothing after it
            assert a.state == "standby"


async def test_a_checkpoint_write_under_an_old_epoch_is_refused() -> None:
    checkpoints = CheckpointStore(InMemoryDocumentStore())
    await checkpoints.fence("c", 1, "a")
    assert await checkpoints.advance("c", 5, "a", 1)
    assert not await checkpoints.advance("c", 4, "a", 1)  # behind: harmless, not fenced
    await checkpoints.fence("c", 2, "b")
    with pytest.raises(FencedOut):
        await checkpoints.advance("c", 9, "a", 1)
    with pytest.raises(FencedOut):
        await checkpoints.report("c", "running", epoch=1)
    with pytest.raises(FencedOut):
        await checkpoints.switch("c", 9, "c__r1", 1)
    with pytest.raises(FencedOut):
        await checkpoints.fence("c", 1, "a")  # an old epoch cannot take it back
    assert (await checkpoints.load("c")).position == 5
    assert await checkpoints.advance("c", 9, "b", 2)
