"""Exactly-once commands: a repeated command id returns the first outcome."""

from __future__ import annotations

import asyncio

import pytest

from application.service import CommandContext
from domain.accounts import Deposit, InsufficientFunds, Withdraw
from tests.application.doubles import RecordingCommandLog, stored_rejection
from tests.wiring import Backend, open_account, with_id


async def test_the_same_command_sent_ten_times_at_once_has_one_effect(backend: Backend) -> None:
    service = backend.service()
    account_id = await open_account(service)
    context = with_id(actor="user-1")

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(service.handle(Deposit(account_id, 700), context) for _ in range(10))),
        timeout=60,
    )

    assert await backend.store.stream_version(account_id) == 2
    for outcome in outcomes:
        assert (outcome.stream_id, outcome.version) == (account_id, 2)
        assert outcome.events == outcomes[0].events
    assert sum(not o.duplicate for o in outcomes) == 1  # one effect, nine repeats of it
    stream = await backend.store.read_stream(account_id, 1)
    carrying_the_id = [e.version for e in stream if e.metadata.command_id == context.command_id]
    assert carrying_the_id == [2]  # exactly one commit (one Deposit event) for the command id
    assert (await service.load("account", account_id)).state.balance == 700


async def test_a_repeat_after_a_restart_returns_the_first_commit(backend: Backend) -> None:
    account_id = await open_account(backend.service())
    context = with_id()
    first = await backend.service().handle(Deposit(account_id, 5), context)

    again = await backend.service().handle(Deposit(account_id, 5), context)

    assert (again.version, again.events, again.duplicate) == (first.version, first.events, True)
    assert await backend.store.stream_version(account_id) == 2


async def test_a_repeated_rejection_is_the_same_even_when_it_would_now_succeed(
    backend: Backend,
) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=500)
    context = with_id()
    with pytest.raises(InsufficientFunds) as first:
        await service.handle(Withdraw(account_id, 800), context)
    await service.handle(Deposit(account_id, 1000))

    for repeater in (service, backend.service()):  # same process, and after a "restart"
        with pytest.raises(InsufficientFunds) as again:
            await repeater.handle(Withdraw(account_id, 800), context)
        assert (
            again.value.details
            == first.value.details
            == {
                "account_id": account_id,
                "balance": 500,
                "requested": 800,
                "currency": "EUR",
            }
        )
        assert (again.value.message, again.value.balance) == (first.value.message, 500)

    assert await backend.store.stream_version(account_id) == 3
    assert await service.handle(Withdraw(account_id, 800), with_id())  # a new id succeeds


async def test_concurrent_copies_of_a_rejected_command_share_one_rejection(
    backend: Backend,
) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=10)
    context = with_id()

    results = await asyncio.gather(
        *(service.handle(Withdraw(account_id, 11), context) for _ in range(10)),
        return_exceptions=True,
    )

    assert all(isinstance(r, InsufficientFunds) for r in results)
    rejection = await stored_rejection(backend.command_log, str(context.command_id))
    assert rejection is not None
    assert rejection.code == "insufficient_funds"
    assert {str(r) for r in results} == {rejection.message}


async def test_a_twin_that_commits_while_we_load_makes_its_commit_our_outcome(
    memory: Backend,
) -> None:
    account_id = await open_account(memory.service(), deposit=100)
    context = with_id()
    counting, store = memory.counted()
    slow = counting.service(cache_size=0)
    twin = memory.service()

    async def twin_commits_first() -> None:
        await twin.handle(Withdraw(account_id, 100), context)

    store.before_read = twin_commits_first
    outcome = await slow.handle(Withdraw(account_id, 100), context)

    # slow decided against balance 0 (insufficient funds), but the command had succeeded
    assert outcome.duplicate
    assert outcome.version == 3
    assert await stored_rejection(memory.command_log, str(context.command_id)) is None


async def test_commands_without_id_are_not_deduplicated(memory: Backend) -> None:
    service = memory.service()
    account_id = await open_account(service)

    await service.handle(Deposit(account_id, 1), CommandContext())
    await service.handle(Deposit(account_id, 1), CommandContext())

    assert (await service.load("account", account_id)).state.balance == 2


async def test_a_twin_that_commits_while_we_record_our_rejection_wins(backend: Backend) -> None:
    account_id = await open_account(backend.service())  # balance 0
    context = with_id()
    log = RecordingCommandLog(backend.command_log)
    slow = Backend(backend.store, backend.snapshots, log).service()
    twin = backend.service()

    async def money_arrives_and_twin_commits() -> None:
        await twin.handle(Deposit(account_id, 100))
        await twin.handle(Withdraw(account_id, 50), context)

    log.before_record = money_arrives_and_twin_commits
    outcome = await slow.handle(Withdraw(account_id, 50), context)  # refused on balance 0

    assert (outcome.duplicate, outcome.version) == (True, 3)
    again = await backend.service().handle(Withdraw(account_id, 50), context)
    assert (again.duplicate, again.version) == (True, 3)
