"""Concurrent writers: internal retries, and the client's expected version."""

from __future__ import annotations

import asyncio

import pytest

from application.context import CommandContext
from application.errors import ConcurrencyConflict
from application.retry import Backoff
from domain.account import Deposit, Withdraw
from tests.application.conftest import Backend, open_account

FAST = Backoff(base=0.001, cap=0.02)


async def test_twenty_concurrent_deposits_are_each_applied_once(backend: Backend) -> None:
    counting, store = backend.counted()
    service = counting.service()
    account_id = await open_account(service)

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(service.handle(Deposit(account_id, 100 + i)) for i in range(20))),
        timeout=60,
    )

    events = await backend.store.read_stream(account_id)
    assert [e.version for e in events] == list(range(1, 22))
    assert sorted(o.version for o in outcomes) == list(range(2, 22))
    deposited = sorted(e.data["amount"] for e in events if e.type == "MoneyDeposited")
    assert deposited == [100 + i for i in range(20)]
    loaded = await service.load("account", account_id)
    assert loaded.state.balance == sum(100 + i for i in range(20))
    assert loaded.version == 21
    assert store.conflicts > 0, "the writers really raced"


async def test_concurrent_deposits_through_two_services_on_one_store(backend: Backend) -> None:
    first, second = backend.service(), backend.service()
    account_id = await open_account(first)
    await second.load("account", account_id)  # both now cache version 1

    await asyncio.wait_for(
        asyncio.gather(
            *((first if i % 2 else second).handle(Deposit(account_id, 10)) for i in range(10))
        ),
        timeout=60,
    )

    assert await backend.store.stream_version(account_id) == 11
    for service in (first, second):
        assert (await service.load("account", account_id)).state.balance == 100


async def test_expected_version_mismatch_is_a_conflict_with_the_actual_version(
    backend: Backend,
) -> None:
    counting, store = backend.counted()
    counted = counting.service()
    account_id = await open_account(counted, deposit=500)

    with pytest.raises(ConcurrencyConflict) as caught:
        await counted.handle(Withdraw(account_id, 1), CommandContext(expected_version=1))

    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert caught.value.code == "concurrency_conflict"
    assert store.appends == 2  # open + deposit: the conflicting command never appended
    ok = await counted.handle(Withdraw(account_id, 1), CommandContext(expected_version=2))
    assert ok.version == 3


async def test_a_stale_cached_expected_version_is_not_retried(backend: Backend) -> None:
    mine, theirs = backend.service(), backend.service()
    account_id = await open_account(mine, deposit=500)  # mine caches version 2
    await theirs.handle(Deposit(account_id, 1))  # the stream moves to 3 behind mine's back

    with pytest.raises(ConcurrencyConflict) as caught:
        await mine.handle(Withdraw(account_id, 1), CommandContext(expected_version=2))

    assert caught.value.actual_version == 3
    assert await backend.store.stream_version(account_id) == 3


async def test_exhausted_retries_raise_a_conflict(memory: Backend) -> None:
    service = memory.service(max_attempts=1, cache_size=0, backoff=FAST)
    account_id = await open_account(service)

    results = await asyncio.gather(
        *(service.handle(Deposit(account_id, 1)) for _ in range(5)), return_exceptions=True
    )

    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert conflicts, "five racing single-attempt writers cannot all win"
    assert await memory.store.stream_version(account_id) == 1 + len(results) - len(conflicts)
