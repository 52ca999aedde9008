"""Stored rejections come back as the same typed errors, with the same details."""

from __future__ import annotations

import pytest

from application.ids import new_command_id
from application.repository import StreamTypeMismatch
from application.service import CommandContext, ConcurrencyConflict, RejectionCodes
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import (
    AccountAlreadyExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    CurrencyMismatch,
    Deposit,
    InsufficientFunds,
    Withdraw,
)
from domain.aggregate import DomainError, InvalidInput, rejection_types
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import InvalidTransferState, TransferAlreadyExists, TransferNotFound
from tests.application.doubles import RecordingCommandLog, stored_rejection
from tests.wiring import Backend, open_account

SAMPLES: list[DomainError] = [
    InvalidInput("amount", "amount must be greater than zero", value=0),
    AccountNotFound("acc-1"),
    AccountAlreadyExists("acc-1"),
    AccountIsClosed("acc-1"),
    InsufficientFunds("acc-1", 100, 250, "EUR"),
    BalanceNotZero("acc-1", 5, "EUR"),
    CurrencyMismatch("acc-1", "EUR", "USD"),
    TransferNotFound("trf-1"),
    TransferAlreadyExists("trf-1"),
    InvalidTransferState("trf-1", "COMPLETED", "fail"),
    ConcurrencyConflict("acc-1", 3, 5),
    StreamTypeMismatch("trf-1", "account", "transfer"),
]


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
async def test_every_rejection_round_trips_through_the_command_log(
    backend: Backend, error: DomainError
) -> None:
    codes = RejectionCodes(rejection_types((ACCOUNT_DOMAIN, TRANSFER_DOMAIN)))
    command_id = new_command_id()
    await backend.command_log.record_rejection(codes.to_record(command_id, "acc-1", error))
    stored = await stored_rejection(backend.command_log, command_id)
    assert stored is not None

    rebuilt = codes.rebuild(stored)

    assert type(rebuilt) is type(error)
    assert (rebuilt.code, rebuilt.message, rebuilt.details) == (
        error.code,
        error.message,
        error.details,
    )
    assert str(rebuilt) == str(error)
    for key, value in error.details.items():
        assert getattr(rebuilt, key, value) == value


def test_an_unknown_code_comes_back_as_a_plain_domain_error() -> None:
    codes = RejectionCodes()
    record = codes.to_record("cmd-1", "acc-1", InsufficientFunds("acc-1", 1, 2, "EUR"))

    rebuilt = codes.rebuild(record)

    assert type(rebuilt) is DomainError
    assert (rebuilt.code, rebuilt.details["balance"]) == ("insufficient_funds", 1)


def test_one_code_for_two_classes_is_refused() -> None:
    class Impostor(DomainError):
        code = "insufficient_funds"

    with pytest.raises(ValueError, match="insufficient_funds"):
        RejectionCodes([InsufficientFunds, Impostor])


async def test_a_conflict_is_not_the_final_outcome_of_a_command(backend: Backend) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=100)
    command_id = new_command_id()

    with pytest.raises(ConcurrencyConflict):
        await service.handle(
            Withdraw(account_id, 10), CommandContext(command_id=command_id, expected_version=1)
        )
    retried = await service.handle(
        Withdraw(account_id, 10), CommandContext(command_id=command_id, expected_version=2)
    )

    assert (retried.version, retried.duplicate) == (3, False)
    assert await stored_rejection(backend.command_log, command_id) is None


async def test_a_rejection_without_command_id_is_not_recorded(memory: Backend) -> None:
    log = RecordingCommandLog(memory.command_log)
    service = Backend(memory.store, memory.snapshots, log).service()

    with pytest.raises(AccountNotFound):
        await service.handle(Deposit("acc-" + "0" * 32, 1))
    with pytest.raises(AccountNotFound):
        await service.handle(Deposit("acc-" + "0" * 32, 1), CommandContext(command_id="cmd-9"))

    assert [r.command_id for r in log.recorded] == ["cmd-9"]
