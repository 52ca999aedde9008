"""Given/when/then tests for every Transfer command and invariant."""

from __future__ import annotations

from typing import Any

import pytest

from domain.aggregate import InvalidInput
from domain.money import MAX_AMOUNT_MINOR
from domain.transfers import (
    TRANSFER,
    CompleteTransfer,
    FailTransfer,
    InvalidTransferState,
    MarkTransferDebited,
    MarkTransferRefunded,
    ParkTransfer,
    RefuseTransferCredit,
    RequestTransfer,
    RetryTransfer,
    TransferAlreadyExists,
    TransferCompleted,
    TransferCreditRefused,
    TransferDebited,
    TransferDebitedAfterFailure,
    TransferFailed,
    TransferNotFound,
    TransferParked,
    TransferRefunded,
    TransferRequested,
    TransferStepRetried,
)
from tests.domain.gwt import given

T = "trf-0123456789abcdef0123456789abcdef"
SRC = "acc-00000000000000000000000000000001"
DST = "acc-00000000000000000000000000000002"
REQUESTED = (TransferRequested(T, SRC, DST, 500),)
DEBITED = (*REQUESTED, TransferDebited(T, "EUR"))
REFUSED = (*DEBITED, TransferCreditRefused(T, "account_closed"))
REFUNDED = (*REFUSED, TransferRefunded(T), TransferFailed(T, "account_closed"))
COMPLETED = (*DEBITED, TransferCompleted(T))
FAILED = (*REQUESTED, TransferFailed(T, "insufficient_funds"))


# RequestTransfer ------------------------------------------------------------


def test_request_transfer() -> None:
    state = given(TRANSFER).when(RequestTransfer(T, SRC, DST, 500)).then(*REQUESTED)
    assert (state.exists, state.status, state.amount, state.currency) == (
        True,
        "REQUESTED",
        500,
        None,
    )


def test_request_transfer_twice_is_rejected() -> None:
    given(TRANSFER, *REQUESTED).when(RequestTransfer(T, SRC, DST, 500)).then_error(
        TransferAlreadyExists, transfer_id=T
    )


def test_transfer_needs_two_different_accounts() -> None:
    given(TRANSFER).when(RequestTransfer(T, SRC, SRC, 500)).then_error(
        InvalidInput, field="to_account_id"
    )


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT_MINOR + 1, 2.5, None, False])
def test_transfer_amount_rules_are_the_account_rules(amount: Any) -> None:
    given(TRANSFER).when(RequestTransfer(T, SRC, DST, amount)).then_error(
        InvalidInput, field="amount"
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (RequestTransfer("", SRC, DST, 1), "transfer_id"),
        (RequestTransfer(T, "", DST, 1), "from_account_id"),
        (RequestTransfer(T, SRC, "a b", 1), "to_account_id"),
    ],
)
def test_request_transfer_validates_ids(command: RequestTransfer, field: str) -> None:
    given(TRANSFER).when(command).then_error(InvalidInput, field=field)


@pytest.mark.parametrize(
    "command",
    [
        MarkTransferDebited(T, "EUR"),
        RefuseTransferCredit(T, "closed"),
        MarkTransferRefunded(T),
        CompleteTransfer(T),
        FailTransfer(T, "no funds"),
    ],
)
def test_steps_of_a_missing_transfer_are_rejected(command: Any) -> None:
    given(TRANSFER).when(command).then_error(TransferNotFound, transfer_id=T)


# the happy path ---------------------------------------------------------------


def test_mark_debited_records_the_currency() -> None:
    state = given(TRANSFER, *REQUESTED).when(MarkTransferDebited(T, "eur")).then(DEBITED[-1])
    assert (state.status, state.currency) == ("DEBITED", "EUR")


def test_complete_after_debit() -> None:
    state = given(TRANSFER, *DEBITED).when(CompleteTransfer(T)).then(TransferCompleted(T))
    assert state.status == "COMPLETED"


@pytest.mark.parametrize(
    ("history", "command"),
    [
        (DEBITED, MarkTransferDebited(T, "EUR")),
        (COMPLETED, MarkTransferDebited(T, "EUR")),
        (COMPLETED, CompleteTransfer(T)),
        (REFUSED, RefuseTransferCredit(T, "again")),
        (REFUNDED, RefuseTransferCredit(T, "again")),
        (REFUNDED, MarkTransferRefunded(T)),
        (REFUNDED, FailTransfer(T, "again")),
        (FAILED, FailTransfer(T, "again")),
    ],
)
def test_a_step_repeated_after_it_took_effect_is_a_no_op(history: Any, command: Any) -> None:
    given(TRANSFER, *history).when(command).then()


# completes or fails exactly once -------------------------------------------------


@pytest.mark.parametrize(
    ("history", "command", "status"),
    [
        (REQUESTED, CompleteTransfer(T), "REQUESTED"),
        (REFUSED, CompleteTransfer(T), "CREDIT_REFUSED"),
        (FAILED, CompleteTransfer(T), "FAILED"),
        (REFUNDED, CompleteTransfer(T), "FAILED"),
        (COMPLETED, FailTransfer(T, "late"), "COMPLETED"),
        (DEBITED, FailTransfer(T, "money is held"), "DEBITED"),
        (REFUSED, FailTransfer(T, "refund first"), "CREDIT_REFUSED"),
        (REFUNDED, MarkTransferDebited(T, "USD"), "FAILED"),
        (DEBITED, MarkTransferDebited(T, "USD"), "DEBITED"),
        (FAILED, MarkTransferRefunded(T), "FAILED"),
    ],
)
def test_impossible_steps_are_rejected(history: Any, command: Any, status: str) -> None:
    given(TRANSFER, *history).when(command).then_error(InvalidTransferState, status=status)


def test_fail_before_any_debit() -> None:
    state = given(TRANSFER, *REQUESTED).when(FailTransfer(T, "insufficient_funds")).then(FAILED[-1])
    assert (state.status, state.reason) == ("FAILED", "insufficient_funds")


# refund only after a debit whose credit was refused -----------------------------


def test_credit_refused_after_debit() -> None:
    state = (
        given(TRANSFER, *DEBITED)
        .when(RefuseTransferCredit(T, " account_closed "))
        .then(REFUSED[-1])
    )
    assert (state.status, state.credit_refused, state.reason) == (
        "DEBITED",
        True,
        "account_closed",
    )


@pytest.mark.parametrize("history", [REQUESTED, COMPLETED, FAILED])
def test_credit_can_only_be_refused_after_a_debit(history: Any) -> None:
    given(TRANSFER, *history).when(RefuseTransferCredit(T, "closed")).then_error(
        InvalidTransferState, action="refuse credit"
    )


def test_refund_fails_the_transfer_in_the_same_commit() -> None:
    state = (
        given(TRANSFER, *REFUSED)
        .when(MarkTransferRefunded(T))
        .then(TransferRefunded(T), TransferFailed(T, "account_closed"))
    )
    assert (state.status, state.refunded) == ("FAILED", True)


@pytest.mark.parametrize("history", [REQUESTED, DEBITED, COMPLETED, FAILED])
def test_refund_needs_a_refused_credit(history: Any) -> None:
    given(TRANSFER, *history).when(MarkTransferRefunded(T)).then_error(
        InvalidTransferState, action="mark refunded"
    )


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, None])
def test_reasons_must_be_sensible(reason: Any) -> None:
    given(TRANSFER, *DEBITED).when(RefuseTransferCredit(T, reason)).then_error(
        InvalidInput, field="reason"
    )
    given(TRANSFER, *REQUESTED).when(FailTransfer(T, reason)).then_error(
        InvalidInput, field="reason"
    )


def test_mark_debited_validates_the_currency() -> None:
    given(TRANSFER, *REQUESTED).when(MarkTransferDebited(T, "EURO")).then_error(
        InvalidInput, field="currency"
    )


def test_unknown_command_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        TRANSFER.decide(TRANSFER.initial_state(), object())  # type: ignore[arg-type]


def test_stream_id_is_the_transfer_id() -> None:
    assert TRANSFER.stream_id(CompleteTransfer(T)) == T
    assert TRANSFER.stream_type == "transfer"


# a debit that landed after the transfer failed ------------------------------------


def test_a_debit_landing_after_failure_is_recorded_and_then_refunded() -> None:
    # A stale process manager saw the debit refused and failed the transfer;
    # its twin's debit of the same transfer was committed anyway.
    late = given(TRANSFER, *FAILED).when(MarkTransferDebited(T, "EUR"))
    state = late.then(TransferDebitedAfterFailure(T, "EUR"))
    assert (state.status, state.late_debit, state.currency) == ("FAILED", True, "EUR")
    again = (*FAILED, TransferDebitedAfterFailure(T, "EUR"))
    given(TRANSFER, *again).when(MarkTransferDebited(T, "EUR")).then()
    state = given(TRANSFER, *again).when(MarkTransferRefunded(T)).then(TransferRefunded(T))
    assert (state.status, state.refunded, state.reason) == ("FAILED", True, "insufficient_funds")
    given(TRANSFER, *again, TransferRefunded(T)).when(MarkTransferRefunded(T)).then()


# parking and retrying ---------------------------------------------------------------


def test_a_parked_step_is_recorded_once_with_its_reason_and_attempt() -> None:
    park = ParkTransfer(T, "complete", "invalid_transfer_state: no")
    state = (
        given(TRANSFER, *DEBITED)
        .when(park)
        .then(TransferParked(T, "complete", "invalid_transfer_state: no", 1))
    )
    assert (state.status, state.parked_step, state.parks) == ("DEBITED", "complete", 1)
    parked = (*DEBITED, TransferParked(T, "complete", "invalid_transfer_state: no", 1))
    given(TRANSFER, *parked).when(ParkTransfer(T, "refund", "other")).then()


def test_retry_lifts_the_current_park_once_and_restores_the_status() -> None:
    parked = (*REFUSED, TransferParked(T, "refund", "invalid_input: limit", 1))
    state = (
        given(TRANSFER, *parked)
        .when(RetryTransfer(T, 1))
        .then(TransferStepRetried(T, "refund", 1, "DEBITED", "account_closed"))
    )
    assert (state.parked_step, state.parks, state.reason) == (None, 1, "account_closed")
    retried = (*parked, TransferStepRetried(T, "refund", 1, "DEBITED", "account_closed"))
    given(TRANSFER, *retried).when(RetryTransfer(T, 1)).then()  # a repeated retry
    state = (
        given(TRANSFER, *retried)
        .when(ParkTransfer(T, "refund", "again"))
        .then(TransferParked(T, "refund", "again", 2))
    )
    given(TRANSFER, *retried, TransferParked(T, "refund", "again", 2)).when(
        RetryTransfer(T, 1)
    ).then()  # a stale retry of the first park


def test_the_workflow_moving_on_lifts_a_park() -> None:
    parked = (*DEBITED, TransferParked(T, "complete", "x", 1))
    state = given(TRANSFER, *parked).when(CompleteTransfer(T)).then(TransferCompleted(T))
    assert (state.status, state.parked_step) == ("COMPLETED", None)
    given(TRANSFER, *parked, TransferCompleted(T)).when(RetryTransfer(T, 1)).then()


@pytest.mark.parametrize("attempt", [0, -1, True, "1", None])
def test_retry_needs_a_positive_attempt(attempt: Any) -> None:
    given(TRANSFER, *DEBITED).when(RetryTransfer(T, attempt)).then_error(
        InvalidInput, field="attempt"
    )


@pytest.mark.parametrize("step", ["", " ", "x" * 51, "a\nb", None])
def test_park_needs_a_sensible_step(step: Any) -> None:
    given(TRANSFER, *DEBITED).when(ParkTransfer(T, step, "r")).then_error(
        InvalidInput, field="step"
    )


def test_park_and_retry_need_the_transfer() -> None:
    given(TRANSFER).when(ParkTransfer(T, "debit", "r")).then_error(TransferNotFound)
    given(TRANSFER).when(RetryTransfer(T, 1)).then_error(TransferNotFound)
