"""Typed rejections: stable codes, plain details, exact restore from stored form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from application.service import RejectionCodes
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import (
    AccountAlreadyExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    CurrencyMismatch,
    InsufficientFunds,
)
from domain.aggregate import DomainError, InvalidInput, rejection_types
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import InvalidTransferState, TransferAlreadyExists, TransferNotFound
from store.protocol import CommandRejection

ERROR_TYPES = rejection_types((ACCOUNT_DOMAIN, TRANSFER_DOMAIN))
CODES = RejectionCodes(ERROR_TYPES)


def restore(code: str, message: str, details: dict[str, Any]) -> DomainError:
    """A rejection as the command log gives it back."""
    return CODES.rebuild(CommandRejection("cmd-1", "stream-1", code, message, details))


SAMPLES: list[DomainError] = [
    InvalidInput("amount", "bad amount", value="0.001"),
    AccountNotFound("acc-1"),
    AccountAlreadyExists("acc-1"),
    AccountIsClosed("acc-1"),
    InsufficientFunds("acc-1", 100, 250, "EUR"),
    BalanceNotZero("acc-1", 100, "EUR"),
    CurrencyMismatch("acc-1", "EUR", "USD"),
    TransferNotFound("trf-1"),
    TransferAlreadyExists("trf-1"),
    InvalidTransferState("trf-1", "COMPLETED", "fail"),
]


def test_every_error_type_has_a_sample_and_a_unique_code() -> None:
    assert {type(e) for e in SAMPLES} == set(ERROR_TYPES)
    assert len({e.code for e in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_details_are_plain_and_restore_exactly(error: DomainError) -> None:
    stored = json.loads(json.dumps({"code": error.code, "m": error.message, "d": error.details}))
    again = restore(stored["code"], stored["m"], stored["d"])
    assert type(again) is type(error)
    assert (again.code, again.message, again.details) == (error.code, error.message, error.details)
    assert isinstance(again, DomainError)
    assert str(again) == error.message


def test_insufficient_funds_exposes_its_values() -> None:
    error = InsufficientFunds("acc-1", 100, 250, "EUR")
    assert (error.balance, error.requested, error.currency) == (100, 250, "EUR")
    assert error.code == "insufficient_funds"


def test_account_closed_error_code() -> None:
    assert AccountIsClosed.code == "account_closed"


def test_restore_of_an_unknown_code_keeps_code_and_details() -> None:
    error = restore("something_new", "text", {"x": 1})
    assert (type(error), error.code, error.details) == (DomainError, "something_new", {"x": 1})
