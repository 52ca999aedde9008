"""Concurrent writers: internal retries, and the client's expected version."""

from __future__ import annotations

import asyncio

import pytest

from application.service import Backoff, CommandContext, ConcurrencyConflict
from domain.accounts import Deposit, Withdraw
from tests.wiring import Backend, open_account

FAST = Backoff(base=0.001, cap=0.02)


async def test_twenty_concurrent_deposits_queue_up_instead_of_racing(backend: Backend) -> None:
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
    assert store.conflicts == 0, "one process serializes its commands per stream"
    assert store.appends == 21


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
    """Five processes (services) with one attempt each race for one stream."""
    services = [memory.service(max_attempts=1, cache_size=0, backoff=FAST) for _ in range(5)]
    account_id = await open_account(services[0])

    results = await asyncio.gather(
        *(service.handle(Deposit(account_id, 1)) for service in services), return_exceptions=True
    )

    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert conflicts, "five racing single-attempt writers cannot all win"
    assert await memory.store.stream_version(account_id) == 1 + len(results) - len(conflicts)


async def test_a_rival_process_winning_past_the_retry_time_gets_a_conflict(
    memory: Backend,
) -> None:
    """Another process commits before each of our appends, for longer than we retry."""
    counting, store = memory.counted()
    loser = counting.service(cache_size=0, backoff=FAST, retry_seconds=0.2)
    rival = memory.service()
    account_id = await open_account(rival)
    overtaken = 0

    async def rival_wins() -> None:
        nonlocal overtaken
        overtaken += 1
        await rival.handle(Deposit(account_id, 1))
        store.before_append = rival_wins  # and again before the next attempt

    store.before_append = rival_wins
    with pytest.raises(ConcurrencyConflict) as caught:
        await asyncio.wait_for(loser.handle(Deposit(account_id, 5)), timeout=30)

    store.before_append = None
    assert store.conflicts == overtaken > 1  # every attempt lost, retried until time ran out
    assert caught.value.actual_version == 1 + overtaken
    balance = (await rival.load("account", account_id)).state.balance
    assert balance == overtaken  # the loser's 5 never landed


async def test_a_rival_that_stops_winning_in_time_is_waited_out(memory: Backend) -> None:
    counting, store = memory.counted()
    loser = counting.service(cache_size=0, backoff=FAST, retry_seconds=30)
    rival = memory.service()
    account_id = await open_account(rival)
    left = [1] * 20

    async def rival_wins_twenty_times() -> None:
        if left:
            left.pop()
            await rival.handle(Deposit(account_id, 1))
            store.before_append = rival_wins_twenty_times

    store.before_append = rival_wins_twenty_times
    outcome = await asyncio.wait_for(loser.handle(Deposit(account_id, 5)), timeout=30)

    assert (outcome.version, store.conflicts) == (22, 20)
    assert (await rival.load("account", account_id)).state.balance == 25
