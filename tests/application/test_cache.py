"""The aggregate cache: no re-read on a hot stream, still correct with several writers."""

from __future__ import annotations

import pytest

from application.ids import new_transfer_id
from application.repository import AggregateCache
from domain.accounts import CreditForTransfer, Deposit, InsufficientFunds, Withdraw
from tests.application.doubles import stored_rejection
from tests.wiring import Backend, open_account, with_id


async def test_a_hot_stream_is_not_read_again(memory: Backend) -> None:
    counting, store = memory.counted()
    service = counting.service()
    account_id = await open_account(service)  # the one read: the stream did not exist yet

    for _ in range(5):
        await service.handle(Deposit(account_id, 10))

    assert store.stream_reads == 1
    assert store.appends == 6


async def test_without_cache_every_command_reads(memory: Backend) -> None:
    counting, store = memory.counted()
    service = counting.service(cache_size=0)
    account_id = await open_account(service)

    for _ in range(3):
        await service.handle(Deposit(account_id, 10))

    assert store.stream_reads == 4


async def test_a_stale_entry_costs_one_conflict_and_a_catch_up(backend: Backend) -> None:
    mine_backend, mine_store = backend.counted()
    mine, theirs = mine_backend.service(), backend.service()
    account_id = await open_account(mine, deposit=100)  # mine caches version 2
    await theirs.handle(Withdraw(account_id, 60))  # version 3, unknown to mine
    reads_before = mine_store.stream_reads

    outcome = await mine.handle(Deposit(account_id, 5))

    assert outcome.version == 4
    assert outcome.events[0].data["balance"] == 45
    assert mine_store.conflicts == 1
    assert mine_store.stream_reads == reads_before + 1
    assert mine_store.events_read == 1  # the first load saw nothing; the catch-up saw v3 only
    assert (await theirs.load("account", account_id)).state.balance == 45


async def test_a_stale_entry_never_lets_a_rule_be_broken(backend: Backend) -> None:
    first, second = backend.service(), backend.service()
    account_id = await open_account(first, deposit=100)
    await second.load("account", account_id)  # second caches balance 100
    await first.handle(Withdraw(account_id, 80))

    try:
        await second.handle(Withdraw(account_id, 80))  # would pass on the stale balance
        refused = False
    except InsufficientFunds as error:
        refused = error.details["balance"] == 20
    assert refused
    assert await backend.store.stream_version(account_id) == 3


async def test_load_returns_the_current_state_even_with_a_stale_entry(backend: Backend) -> None:
    first, second = backend.service(), backend.service()
    account_id = await open_account(first, deposit=100)
    await second.load("account", account_id)
    await first.handle(Deposit(account_id, 1))

    loaded = await second.load("account", account_id)

    assert (loaded.version, loaded.state.balance) == (3, 101)


def test_the_cache_is_a_bounded_lru_that_never_moves_back() -> None:
    cache = AggregateCache(2)
    cache.put(("account", "a"), "A1", 1)
    cache.put(("account", "b"), "B1", 1)
    assert cache.get(("account", "a")) is not None  # a is now the most recent
    cache.put(("account", "c"), "C1", 1)

    assert cache.get(("account", "b")) is None
    assert len(cache) == 2
    cache.put(("account", "a"), "A0", 0)
    entry = cache.get(("account", "a"))
    assert entry is not None
    assert (entry.state, entry.version) == ("A1", 1)
    cache.discard(("account", "a"))
    assert cache.get(("account", "a")) is None

    disabled = AggregateCache(0)
    disabled.put(("account", "a"), "A1", 1)
    assert len(disabled) == 0


async def test_a_stale_entry_never_causes_a_wrong_rejection(backend: Backend) -> None:
    first, second = backend.service(), backend.service()
    account_id = await open_account(first, deposit=10)
    await second.load("account", account_id)  # second caches balance 10
    await first.handle(Deposit(account_id, 90))
    context = with_id()

    outcome = await second.handle(Withdraw(account_id, 50), context)  # refused on balance 10

    assert (outcome.version, outcome.events[0].data["balance"]) == (4, 50)
    assert await stored_rejection(backend.command_log, str(context.command_id)) is None


async def test_a_stale_entry_never_causes_a_wrong_no_op(memory: Backend) -> None:
    first, second = memory.service(), memory.service()
    account_id = await open_account(first)
    await second.load("account", account_id)
    transfer_id = new_transfer_id()
    await first.handle(CreditForTransfer(account_id, transfer_id, 5, "EUR"))

    outcome = await second.handle(CreditForTransfer(account_id, transfer_id, 5, "EUR"))

    assert (outcome.version, outcome.events) == (2, ())  # the no-op is at the current version


async def test_a_rejection_on_a_cached_entry_costs_one_catch_up_read(memory: Backend) -> None:
    counting, store = memory.counted()
    service = counting.service()
    account_id = await open_account(service, deposit=10)
    reads = store.stream_reads

    with pytest.raises(InsufficientFunds):
        await service.handle(Withdraw(account_id, 11))

    assert store.stream_reads == reads + 1  # one check that the cached state was current
