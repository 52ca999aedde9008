"""Snapshots: written every N events off the critical path, used when loading."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from application.repository import MAX_SNAPSHOT_FALLBACKS, SnapshotWriter
from domain.accounts import ACCOUNT, Deposit
from store.memory import InMemorySnapshotStore
from store.protocol import Snapshot
from tests.application.doubles import BrokenSnapshots, CountingSnapshots
from tests.wiring import Backend, open_account


class GatedSnapshots(InMemorySnapshotStore):
    """Saves wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def save(self, snapshot: Snapshot) -> None:
        await self.gate.wait()
        await super().save(snapshot)


async def _account_with_deposits(backend: Backend, count: int, **options: object) -> str:
    service = backend.service(**options)
    account_id = await open_account(service)
    for _ in range(count):
        await service.handle(Deposit(account_id, 1))
    await service.close()
    return account_id


async def test_a_snapshot_is_written_every_n_events(backend: Backend) -> None:
    snapshots = CountingSnapshots(backend.snapshots)
    backend = Backend(backend.store, snapshots, backend.command_log)

    account_id = await _account_with_deposits(backend, 11, snapshot_every=5)  # versions 1..12

    assert [s.version for s in snapshots.saved] == [5, 10]
    latest = snapshots.saved[-1]
    assert (latest.stream_id, latest.stream_type) == (account_id, "account")
    assert latest.schema_version == ACCOUNT.snapshot_version
    assert ACCOUNT.from_snapshot(latest.state).balance == 9


async def test_loading_starts_from_the_latest_snapshot(backend: Backend) -> None:
    account_id = await _account_with_deposits(backend, 11, snapshot_every=5)
    counting, store = backend.counted()

    loaded = await counting.service(snapshot_every=5).load("account", account_id)

    assert (loaded.version, loaded.state.balance) == (12, 11)
    assert store.events_read == 2  # versions 11 and 12 only


async def test_a_snapshot_of_an_unknown_schema_version_is_ignored(backend: Backend) -> None:
    account_id = await _account_with_deposits(backend, 11, snapshot_every=0)
    alien = Snapshot(account_id, "account", 10, ACCOUNT.snapshot_version + 1, {"shape": "new"})
    await backend.snapshots.save(alien)
    counting, store = backend.counted()

    loaded = await counting.service(snapshot_every=0).load("account", account_id)

    assert (loaded.version, loaded.state.balance) == (12, 11)
    assert store.events_read == 12


async def test_an_unreadable_snapshot_is_ignored(backend: Backend) -> None:
    account_id = await _account_with_deposits(backend, 3, snapshot_every=0)
    await backend.snapshots.save(
        Snapshot(account_id, "account", 4, ACCOUNT.snapshot_version, {"balance": "garbage"})
    )

    loaded = await backend.service().load("account", account_id)

    assert (loaded.version, loaded.state.balance) == (4, 3)


async def test_an_unknown_schema_falls_back_to_an_older_usable_snapshot(backend: Backend) -> None:
    account_id = await _account_with_deposits(backend, 11, snapshot_every=5)  # snapshots 5, 10
    alien = Snapshot(account_id, "account", 12, ACCOUNT.snapshot_version + 1, {"shape": "new"})
    await backend.snapshots.save(alien)
    counting, store = backend.counted()

    loaded = await counting.service(snapshot_every=0).load("account", account_id)

    assert (loaded.version, loaded.state.balance) == (12, 11)
    assert store.events_read == 2  # from the snapshot at 10, not a full replay


async def test_an_unreadable_snapshot_falls_back_to_an_older_usable_one(backend: Backend) -> None:
    account_id = await _account_with_deposits(backend, 11, snapshot_every=5)  # snapshots 5, 10
    broken = Snapshot(account_id, "account", 12, ACCOUNT.snapshot_version, {"balance": "garbage"})
    alien = Snapshot(account_id, "account", 11, ACCOUNT.snapshot_version + 1, {"shape": "new"})
    for snapshot in (broken, alien):
        await backend.snapshots.save(snapshot)
    counting, store = backend.counted()

    loaded = await counting.service(snapshot_every=0).load("account", account_id, at_version=12)

    assert (loaded.version, loaded.state.balance) == (12, 11)
    assert store.events_read == 2


async def test_the_fallback_through_unusable_snapshots_is_bounded(memory: Backend) -> None:
    extra = MAX_SNAPSHOT_FALLBACKS + 2
    account_id = await _account_with_deposits(memory, 1 + extra, snapshot_every=0)
    for version in range(3, 3 + extra):  # all of an unknown schema
        await memory.snapshots.save(Snapshot(account_id, "account", version, 99, {}))
    snapshots = CountingSnapshots(memory.snapshots)
    counting, store = Backend(memory.store, snapshots, memory.command_log).counted()

    loaded = await counting.service(snapshot_every=0).load("account", account_id)

    assert loaded.version == 2 + extra
    assert snapshots.lookups == MAX_SNAPSHOT_FALLBACKS
    assert store.events_read == 2 + extra  # gave up on snapshots: a full replay


async def test_a_failing_snapshot_store_never_fails_a_command(memory: Backend) -> None:
    broken = BrokenSnapshots()
    backend = Backend(memory.store, broken, memory.command_log)
    service = backend.service(snapshot_every=2)
    account_id = await open_account(service)

    outcomes = [await service.handle(Deposit(account_id, 1)) for _ in range(6)]
    await service.drain()

    assert [o.version for o in outcomes] == [2, 3, 4, 5, 6, 7]
    assert broken.attempts == 3
    assert service.snapshots.failed == 3
    fresh = backend.service(snapshot_every=0)  # its snapshot lookup fails too: full replay
    assert (await fresh.load("account", account_id)).state.balance == 6


async def test_snapshots_are_written_off_the_critical_path(memory: Backend) -> None:
    gated = GatedSnapshots()
    service = Backend(memory.store, gated, memory.command_log).service(snapshot_every=2)
    account_id = await open_account(service)

    outcome = await asyncio.wait_for(service.handle(Deposit(account_id, 1)), timeout=5)

    assert outcome.version == 2
    assert service.snapshots.pending == 1
    assert await gated.latest(account_id) is None
    gated.gate.set()
    await asyncio.wait_for(service.drain(), timeout=5)
    assert service.snapshots.pending == 0
    snapshot = await gated.latest(account_id)
    assert snapshot is not None
    assert snapshot.version == 2


async def test_a_long_replay_without_snapshot_writes_one(memory: Backend) -> None:
    account_id = await _account_with_deposits(memory, 9, snapshot_every=0)
    snapshots = CountingSnapshots(memory.snapshots)
    service = Backend(memory.store, snapshots, memory.command_log).service(snapshot_every=5)

    await service.load("account", account_id)
    await service.close()

    assert [s.version for s in snapshots.saved] == [10]


async def test_after_close_no_snapshot_is_started(memory: Backend) -> None:
    snapshots = CountingSnapshots(memory.snapshots)
    service = Backend(memory.store, snapshots, memory.command_log).service(snapshot_every=1)
    account_id = await open_account(service)
    await service.close()

    await service.handle(Deposit(account_id, 1))
    await service.drain()

    assert [s.version for s in snapshots.saved] == [1]


async def drain_right_after_a_save_finished() -> int:
    """Drain when the only task is done but its done callbacks have not run yet.

    The in-memory save never suspends, so the task finishes in its first step;
    the callback that removes it from the writer's set is then queued behind
    this coroutine. Returns how many tasks the writer still counts.
    """
    writer = SnapshotWriter(InMemorySnapshotStore())
    writer.schedule(ACCOUNT, "acc-1", ACCOUNT.initial_state(), 1)
    await asyncio.sleep(0)  # the save runs and finishes; its callbacks are queued after us
    await writer.drain()
    return writer.pending


def test_drain_returns_when_saves_finished_but_their_callbacks_have_not_run() -> None:
    # A drain that waits for the callbacks to empty the set spins without ever
    # yielding on Python 3.12+ (gather of done tasks completes eagerly), so no
    # timeout inside the loop could end it: the scenario runs in a child process.
    script = (
        "import asyncio; from tests.application.test_snapshots import "
        "drain_right_after_a_save_finished as f; print(asyncio.run(f()))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60
    )

    assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr


def test_drain_does_not_wait_for_a_task_of_another_event_loop() -> None:
    gated = GatedSnapshots()
    writer = SnapshotWriter(gated)

    async def schedule() -> None:
        writer.schedule(ACCOUNT, "acc-1", ACCOUNT.initial_state(), 1)
        await asyncio.sleep(0)  # the save starts and waits at the gate

    async def drain() -> int:
        await asyncio.wait_for(writer.drain(), timeout=5)
        return writer.pending

    other = asyncio.new_event_loop()
    try:
        other.run_until_complete(schedule())  # that loop stops with the save unfinished
        assert writer.pending == 1

        assert asyncio.run(drain()) == 0
    finally:
        gated.gate.set()  # let the other loop finish its save before it is closed
        other.run_until_complete(asyncio.sleep(0.01))
        other.close()
    assert asyncio.run(gated.latest("acc-1")) is not None  # it ran there, on its own loop
