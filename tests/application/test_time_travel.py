"""Time travel: any past state, by version or by moment, equals a full replay."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.service import ApplicationService
from domain.accounts import ACCOUNT, Deposit, InsufficientFunds, Withdraw
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from store.memory import InMemoryCommandLog, InMemoryEventStore, InMemorySnapshotStore
from store.protocol import EventStore
from tests.wiring import Backend, open_account

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
EVENTS = build_registry(BANK)

START = datetime(2026, 1, 1, tzinfo=UTC)


class StepClock:
    """Each reading is one second after the previous one, from ``START``."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return START + timedelta(seconds=self.readings - 1)


def clocked_backend() -> Backend:
    store = InMemoryEventStore(clock=StepClock())
    return Backend(store, InMemorySnapshotStore(), InMemoryCommandLog(store))


async def replayed(store: EventStore, stream_id: str, version: int) -> Any:
    """The reference: every event up to ``version`` folded from the initial state."""
    state = ACCOUNT.initial_state()
    for recorded in await store.read_stream(stream_id, 1, version):
        event = EVENTS.decode(recorded.type, recorded.schema_version, recorded.data)
        state = ACCOUNT.evolve(state, event)
    return state


async def build_account(service: ApplicationService, moves: list[int]) -> str:
    """Deposits (positive) and withdrawals (negative); refused withdrawals are skipped."""
    account_id = await open_account(service)
    for amount in moves:
        command = Deposit(account_id, amount) if amount > 0 else Withdraw(account_id, -amount)
        with contextlib.suppress(InsufficientFunds):
            await service.handle(command)
    await service.drain()
    return account_id


async def test_load_at_a_version_and_as_of_a_moment() -> None:
    backend = clocked_backend()
    service = backend.service(snapshot_every=3)
    account_id = await build_account(service, [100, 200, -50, 400, 25])  # versions 1..6

    at_four = await backend.service().load("account", account_id, at_version=4)
    as_of = await service.load(ACCOUNT, account_id, as_of=START + timedelta(seconds=3.5))
    before = await service.load("account", account_id, as_of=START - timedelta(seconds=1))
    beyond = await service.load("account", account_id, at_version=99)

    assert (at_four.version, at_four.state.balance) == (4, 250)
    assert (as_of.version, as_of.state) == (4, at_four.state)
    assert (before.version, before.state) == (0, ACCOUNT.initial_state())
    assert (beyond.version, beyond.state.balance) == (6, 675)


async def test_time_travel_arguments_are_checked(memory: Backend) -> None:
    service = memory.service()
    with pytest.raises(ValueError, match="not both"):
        await service.load("account", "acc-x", at_version=1, as_of=START)
    with pytest.raises(ValueError, match="timezone"):
        await service.load("account", "acc-x", as_of=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=">= 0"):
        await service.load("account", "acc-x", at_version=-1)
    with pytest.raises(LookupError):
        await service.load("no-such-type", "acc-x")


async def test_history_pairs_each_event_with_the_state_after_it() -> None:
    backend = clocked_backend()
    service = backend.service(snapshot_every=2)
    account_id = await build_account(service, [100, -30, 5])

    history = await service.history("account", account_id)

    assert [entry.event.version for entry in history] == [1, 2, 3, 4]
    assert [state.balance for _, state in history] == [0, 100, 70, 75]
    for event, state in history:
        assert state == await replayed(backend.store, account_id, event.version)
    partial = await service.history(ACCOUNT, account_id, to_version=2)
    assert [entry.event.type for entry in partial] == ["AccountOpened", "MoneyDeposited"]


moves = st.lists(st.integers(-300, 500).filter(bool), max_size=30)
targets = st.lists(st.integers(0, 35), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(moves=moves, targets=targets, every=st.integers(1, 8))
def test_time_travel_equals_a_full_replay(moves: list[int], targets: list[int], every: int) -> None:
    # One event loop per example, and nothing of it outlives it: the services
    # are closed (their snapshot writes finished) before the loop is.
    asyncio.run(_check_targets(moves, targets, every))


async def _check_targets(moves: list[int], targets: list[int], every: int) -> None:
    backend = clocked_backend()
    writer = backend.service(snapshot_every=every)
    cold = backend.service(snapshot_every=every)  # empty cache: snapshots + events
    try:
        await _compare_with_replays(backend, writer, cold, moves, targets)
    finally:
        await writer.close()
        await cold.close()


async def _compare_with_replays(
    backend: Backend,
    writer: ApplicationService,
    cold: ApplicationService,
    moves: list[int],
    targets: list[int],
) -> None:
    account_id = await build_account(writer, moves)
    current = await backend.store.stream_version(account_id)

    for target in targets:
        expected_version = min(target, current)
        expected = await replayed(backend.store, account_id, expected_version)
        moment = START + timedelta(seconds=expected_version - 0.5)  # commit v at START+(v-1)s
        for loaded in (
            await cold.load("account", account_id, at_version=target),
            await writer.load("account", account_id, at_version=target),  # warm cache
            await cold.load("account", account_id, as_of=moment),
        ):
            assert (loaded.version, loaded.state) == (expected_version, expected)


async def test_a_past_state_starts_from_the_snapshot_at_or_below_it(backend: Backend) -> None:
    writer = backend.service(snapshot_every=5)
    account_id = await build_account(writer, [1] * 11)  # versions 1..12, snapshots at 5 and 10
    counting, store = backend.counted()
    reader = counting.service(cache_size=0)

    past = await reader.load("account", account_id, at_version=8)

    assert (past.version, past.state.balance) == (8, 7)
    assert store.events_read == 3  # versions 6..8 on top of the snapshot at 5
    assert past.state == await replayed(backend.store, account_id, 8)
