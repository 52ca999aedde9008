"""One command id, one command: fingerprints, IdempotencyKeyReused, and the decide/write race."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import pytest

from application.ids import new_command_id, new_event_id, new_transfer_id
from application.service import CommandContext, IdempotencyKeyReused, command_type, fingerprint
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import CloseAccount, Deposit, InsufficientFunds, Withdraw
from domain.aggregate import deciders
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import RequestTransfer
from store.protocol import CommitMetadata, NewEvent
from tests.application.doubles import CountingStore, RecordingCommandLog, stored_rejection
from tests.wiring import Backend, open_account, with_id

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)


@dataclasses.dataclass(frozen=True)
class Later:
    """A command type added later: nothing about it is registered anywhere."""

    account_id: str
    tags: tuple[str, ...]
    rate: Decimal


def test_a_fingerprint_names_the_type_and_tells_every_field_apart() -> None:
    base = fingerprint(Deposit("acc-1", 5), "acc-1")
    assert command_type(base) == "Deposit"
    assert base == fingerprint(Deposit("acc-1", 5), "acc-1")
    others = {
        fingerprint(Deposit("acc-1", 6), "acc-1"),
        fingerprint(Deposit("acc-2", 5), "acc-2"),
        fingerprint(Deposit("acc-1", 5), "acc-2"),
        fingerprint(Withdraw("acc-1", 5), "acc-1"),
        fingerprint(CloseAccount("acc-1"), "acc-1"),
    }
    assert base not in others
    assert len(others) == 5
    later = Later("acc-1", ("a", "b"), Decimal("1.50"))
    assert fingerprint(later, "acc-1") != fingerprint(
        dataclasses.replace(later, rate=Decimal("1.5")), "acc-1"
    )
    assert command_type(fingerprint(later, "acc-1")) == "Later"


def test_every_command_of_the_bank_has_a_fingerprint() -> None:
    for command_class in DECIDERS:
        values = {
            f.name: 1 if f.type in ("int", int) else "x" for f in dataclasses.fields(command_class)
        }
        assert command_type(fingerprint(command_class(**values), "s")) == command_class.__name__


def test_a_value_with_no_canonical_form_is_refused() -> None:
    with pytest.raises(TypeError):
        fingerprint(Later("acc-1", (object(),), Decimal(1)), "acc-1")  # type: ignore[arg-type]


async def test_an_id_reused_for_another_command_is_refused_and_changes_nothing(
    backend: Backend,
) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=100)
    other = await open_account(service)
    context = with_id()
    first = await service.handle(Deposit(account_id, 5), context)

    for command in (
        Deposit(account_id, 6),
        Withdraw(account_id, 5),
        Deposit(other, 5),
        RequestTransfer(new_transfer_id(), account_id, other, 5),
    ):
        with pytest.raises(IdempotencyKeyReused) as refused:
            await service.handle(command, context)
        assert refused.value.original_command_type == "Deposit"
        assert refused.value.code == "idempotency_key_reused"

    again = await backend.service().handle(Deposit(account_id, 5), context)
    assert (again.duplicate, again.version, again.events) == (True, 3, first.events)
    assert await backend.store.stream_version(account_id) == 3
    assert await backend.store.stream_version(other) == 1


async def test_an_id_first_rejected_is_refused_for_another_command(backend: Backend) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=10)
    context = with_id()
    with pytest.raises(InsufficientFunds):
        await service.handle(Withdraw(account_id, 11), context)

    with pytest.raises(IdempotencyKeyReused) as refused:
        await service.handle(Deposit(account_id, 11), context)
    with pytest.raises(IdempotencyKeyReused):
        await service.handle(Withdraw(account_id, 10), context)  # would succeed: still refused
    with pytest.raises(InsufficientFunds):
        await service.handle(Withdraw(account_id, 11), context)

    assert refused.value.original_command_type == "Withdraw"
    assert await backend.store.stream_version(account_id) == 2


async def test_a_commit_recorded_without_fingerprint_is_still_the_outcome(
    backend: Backend,
) -> None:
    """Commits written before fingerprints existed are returned as they are."""
    service = backend.service()
    account_id = await open_account(service)
    command_id = new_command_id()
    data = {"account_id": account_id, "amount": 3, "balance": 3}
    await backend.store.append(
        account_id,
        "account",
        1,
        [NewEvent(new_event_id(), "MoneyDeposited", data)],
        CommitMetadata(command_id=command_id),
    )

    again = await service.handle(Deposit(account_id, 3), CommandContext(command_id=command_id))

    assert (again.duplicate, again.version) == (True, 2)


async def test_a_copy_paused_between_decision_and_write_loses_to_the_recorded_rejection(
    backend: Backend,
) -> None:
    """R rejects on balance 0 and pauses; money arrives; C decides to commit and pauses.

    R writes first, then C: C's append (at the stream's current version) is
    refused by R's rejection, and both, and every later copy, answer it.
    """
    account_id = await open_account(backend.service())  # balance 0
    context = with_id()
    log = RecordingCommandLog(backend.command_log)
    rejecter = Backend(backend.store, backend.snapshots, log).service(cache_size=0)
    counting = CountingStore(backend.store)
    committer = Backend(counting, backend.snapshots, backend.command_log).service(cache_size=0)
    r_paused, c_paused, r_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def pause_r() -> None:
        r_paused.set()
        await c_paused.wait()

    async def pause_c() -> None:
        c_paused.set()
        await r_done.wait()

    log.before_record, counting.before_append = pause_r, pause_c
    r_task = asyncio.create_task(rejecter.handle(Withdraw(account_id, 50), context))
    await r_paused.wait()
    await backend.service().handle(Deposit(account_id, 100))
    c_task = asyncio.create_task(committer.handle(Withdraw(account_id, 50), context))
    with pytest.raises(InsufficientFunds):
        await asyncio.wait_for(r_task, timeout=30)
    r_done.set()
    with pytest.raises(InsufficientFunds) as c_answer:
        await asyncio.wait_for(c_task, timeout=30)

    assert c_answer.value.details["balance"] == 0  # R's rejection, not a decision of C's
    with pytest.raises(InsufficientFunds):
        await backend.service().handle(Withdraw(account_id, 50), context)
    assert await backend.store.stream_version(account_id) == 2
    assert await backend.store.find_command(str(context.command_id)) is None
    assert await stored_rejection(backend.command_log, str(context.command_id)) is not None
