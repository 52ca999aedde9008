"""Given/when/then tests for every Account command and invariant."""

from __future__ import annotations

from typing import Any

import pytest

from domain.accounts import (
    ACCOUNT,
    AccountAlreadyExists,
    AccountClosed,
    AccountIsClosed,
    AccountNotFound,
    AccountOpened,
    BalanceNotZero,
    CloseAccount,
    CreditForTransfer,
    CurrencyMismatch,
    DebitForTransfer,
    Deposit,
    InsufficientFunds,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
    OpenAccount,
    RefundForTransfer,
    Withdraw,
)
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.aggregate import InvalidInput
from domain.codec import build_registry
from domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import InvalidTransferState
from tests.domain.gwt import given

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
EVENTS = build_registry(BANK)

A = "acc-0123456789abcdef0123456789abcdef"
T = "trf-0123456789abcdef0123456789abcdef"
OPENED = AccountOpened(A, "Ada", "EUR")
FUNDED = (OPENED, MoneyDeposited(A, 1000, 1000))
CLOSED = (OPENED, AccountClosed(A))
DEBITED = (*FUNDED, MoneyDebitedForTransfer(A, T, 300, "EUR", 700))


# OpenAccount ----------------------------------------------------------------


def test_open_account() -> None:
    state = given(ACCOUNT).when(OpenAccount(A, "Ada", "EUR")).then(OPENED)
    assert (state.exists, state.owner, state.currency, state.balance) == (True, "Ada", "EUR", 0)
    assert state.status == "OPEN"


def test_open_account_trims_owner_and_upper_cases_currency() -> None:
    given(ACCOUNT).when(OpenAccount(A, "  Ada  ", "eur")).then(OPENED)


def test_open_existing_account_is_rejected() -> None:
    given(ACCOUNT, OPENED).when(OpenAccount(A, "Bob", "USD")).then_error(
        AccountAlreadyExists, account_id=A
    )


@pytest.mark.parametrize("owner", ["", "   ", "x" * 201, "Ada\x00", 42, None])
def test_open_account_needs_a_sensible_owner(owner: Any) -> None:
    given(ACCOUNT).when(OpenAccount(A, owner, "EUR")).then_error(InvalidInput, field="owner")


def test_owner_of_max_length_is_accepted() -> None:
    given(ACCOUNT).when(OpenAccount(A, "x" * 200, "EUR")).then(AccountOpened(A, "x" * 200, "EUR"))


@pytest.mark.parametrize("currency", ["", "EU", "EURO", "E1R", "€€€", "\u0131bc", None, 978])
def test_open_account_needs_a_three_letter_currency(currency: Any) -> None:
    given(ACCOUNT).when(OpenAccount(A, "Ada", currency)).then_error(InvalidInput, field="currency")


@pytest.mark.parametrize("account_id", ["", "a b", "x" * 101, "acc\n1", None])
def test_open_account_needs_a_valid_id(account_id: Any) -> None:
    given(ACCOUNT).when(OpenAccount(account_id, "Ada", "EUR")).then_error(
        InvalidInput, field="account_id"
    )


# Deposit / Withdraw ----------------------------------------------------------


def test_deposit_adds_to_the_balance() -> None:
    state = given(ACCOUNT, *FUNDED).when(Deposit(A, 234)).then(MoneyDeposited(A, 234, 1234))
    assert state.balance == 1234


def test_withdraw_takes_from_the_balance() -> None:
    given(ACCOUNT, *FUNDED).when(Withdraw(A, 1000)).then(MoneyWithdrawn(A, 1000, 0))


def test_withdraw_beyond_the_balance_is_rejected_with_details() -> None:
    error = given(ACCOUNT, *FUNDED).when(Withdraw(A, 1001)).then_error(InsufficientFunds)
    assert error.details == {"account_id": A, "balance": 1000, "requested": 1001, "currency": "EUR"}


BAD_AMOUNTS = [0, -1, MAX_AMOUNT_MINOR + 1, True, 1.5, "10", None]


@pytest.mark.parametrize("command_type", [Deposit, Withdraw])
@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_money_commands_validate_the_raw_amount(command_type: Any, amount: Any) -> None:
    given(ACCOUNT, *FUNDED).when(command_type(A, amount)).then_error(InvalidInput, field="amount")


def test_max_amount_is_accepted() -> None:
    given(ACCOUNT, OPENED).when(Deposit(A, MAX_AMOUNT_MINOR)).then(
        MoneyDeposited(A, MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR)
    )


def test_balance_never_exceeds_its_maximum() -> None:
    full = (OPENED, MoneyDeposited(A, 1, MAX_BALANCE_MINOR))
    given(ACCOUNT, *full).when(Deposit(A, 1)).then_error(
        InvalidInput, field="amount", balance=MAX_BALANCE_MINOR
    )


@pytest.mark.parametrize(
    "command",
    [
        Deposit(A, 1),
        Withdraw(A, 1),
        CloseAccount(A),
        DebitForTransfer(A, T, 1),
        CreditForTransfer(A, T, 1, "EUR"),
        RefundForTransfer(A, T, 1),
    ],
)
def test_commands_on_a_missing_account_are_rejected(command: Any) -> None:
    given(ACCOUNT).when(command).then_error(AccountNotFound, account_id=A)


@pytest.mark.parametrize(
    "command",
    [
        OpenAccount(A, "Ada", "EUR"),
        Deposit(A, 1),
        Withdraw(A, 1),
        CloseAccount(A),
        DebitForTransfer(A, T, 1),
        CreditForTransfer(A, T, 1, "EUR"),
    ],
)
def test_a_closed_account_accepts_nothing(command: Any) -> None:
    error_type = AccountAlreadyExists if isinstance(command, OpenAccount) else AccountIsClosed
    given(ACCOUNT, *CLOSED).when(command).then_error(error_type, account_id=A)


def test_refund_to_an_account_closed_while_the_transfer_was_in_flight_is_recorded() -> None:
    # The one exception to "closed accepts nothing": money must never vanish.
    emptied = (*DEBITED, MoneyWithdrawn(A, 700, 0), AccountClosed(A))
    state = (
        given(ACCOUNT, *emptied)
        .when(RefundForTransfer(A, T, 300))
        .then(MoneyRefundedForTransfer(A, T, 300, 300))
    )
    assert (state.status, state.balance) == ("CLOSED", 300)


def test_refund_is_not_subject_to_the_balance_limit() -> None:
    # A deposit landed between the debit and the refund and filled the account
    # to its maximum: the refund still goes through, past the maximum.
    filled = (*DEBITED, MoneyDeposited(A, MAX_BALANCE_MINOR - 700, MAX_BALANCE_MINOR))
    state = (
        given(ACCOUNT, *filled)
        .when(RefundForTransfer(A, T, 300))
        .then(MoneyRefundedForTransfer(A, T, 300, MAX_BALANCE_MINOR + 300))
    )
    assert state.balance == MAX_BALANCE_MINOR + 300
    # Over the maximum, nothing else adds money until the balance is back under it.
    given(ACCOUNT, *filled, MoneyRefundedForTransfer(A, T, 300, MAX_BALANCE_MINOR + 300)).when(
        Deposit(A, 1)
    ).then_error(InvalidInput, field="amount", balance=MAX_BALANCE_MINOR + 300)


def test_refunds_past_the_storage_range_are_exact_in_events_snapshots_and_rejections() -> None:
    # Many refunds landing on a full account: the balance leaves the int64 range.
    huge = 2**63 + 5
    events = (*DEBITED, MoneyDeposited(A, 1, huge - 300))
    state = (
        given(ACCOUNT, *events)
        .when(RefundForTransfer(A, T, 300))
        .then(MoneyRefundedForTransfer(A, T, 300, huge))
    )
    encoded = EVENTS.encode(MoneyRefundedForTransfer(A, T, 300, huge))
    assert encoded.data["balance"] == str(huge)
    decoded = EVENTS.decode(encoded.type, encoded.schema_version, encoded.data)
    assert decoded == MoneyRefundedForTransfer(A, T, 300, huge)
    snapshot = ACCOUNT.to_snapshot(state)
    assert snapshot["balance"] == str(huge)
    assert ACCOUNT.from_snapshot(snapshot) == state
    error = given(ACCOUNT, *events, decoded).when(CloseAccount(A)).then_error(BalanceNotZero)
    assert error.details["balance"] == str(huge)
    assert type(error)(**error.details).details == error.details


# CloseAccount ---------------------------------------------------------------


def test_close_account_with_zero_balance() -> None:
    state = given(ACCOUNT, OPENED).when(CloseAccount(A)).then(AccountClosed(A))
    assert state.status == "CLOSED"


def test_closing_needs_a_zero_balance() -> None:
    given(ACCOUNT, *FUNDED).when(CloseAccount(A)).then_error(
        BalanceNotZero, account_id=A, balance=1000, currency="EUR"
    )


# Transfer legs --------------------------------------------------------------


def test_debit_for_transfer_records_the_leg_with_currency() -> None:
    state = given(ACCOUNT, *FUNDED).when(DebitForTransfer(A, T, 300)).then(DEBITED[-1])
    assert state.balance == 700


def test_debit_for_transfer_needs_funds() -> None:
    given(ACCOUNT, *FUNDED).when(DebitForTransfer(A, T, 1001)).then_error(
        InsufficientFunds, balance=1000, requested=1001
    )


def test_repeated_debit_for_the_same_transfer_is_a_no_op() -> None:
    given(ACCOUNT, *DEBITED).when(DebitForTransfer(A, T, 300)).then()


def test_repeated_debit_with_another_amount_is_rejected() -> None:
    given(ACCOUNT, *DEBITED).when(DebitForTransfer(A, T, 301)).then_error(
        InvalidInput, field="amount", expected=300
    )


def test_credit_for_transfer() -> None:
    given(ACCOUNT, *FUNDED).when(CreditForTransfer(A, T, 50, "eur")).then(
        MoneyCreditedForTransfer(A, T, 50, 1050)
    )


def test_repeated_credit_for_the_same_transfer_is_a_no_op() -> None:
    credited = (*FUNDED, MoneyCreditedForTransfer(A, T, 50, 1050))
    given(ACCOUNT, *credited).when(CreditForTransfer(A, T, 50, "EUR")).then()


def test_credit_in_another_currency_is_rejected() -> None:
    given(ACCOUNT, *FUNDED).when(CreditForTransfer(A, T, 50, "USD")).then_error(
        CurrencyMismatch, account_id=A, expected="EUR", actual="USD"
    )


def test_credit_after_a_debit_of_the_same_transfer_is_rejected() -> None:
    given(ACCOUNT, *DEBITED).when(CreditForTransfer(A, T, 300, "EUR")).then_error(
        InvalidTransferState, transfer_id=T, status="DEBITED", action="credit"
    )


def test_debit_after_a_credit_of_the_same_transfer_is_rejected() -> None:
    credited = (*FUNDED, MoneyCreditedForTransfer(A, T, 50, 1050))
    given(ACCOUNT, *credited).when(DebitForTransfer(A, T, 50)).then_error(
        InvalidTransferState, status="CREDITED", action="debit"
    )


def test_refund_gives_back_the_debit() -> None:
    state = (
        given(ACCOUNT, *DEBITED)
        .when(RefundForTransfer(A, T, 300))
        .then(MoneyRefundedForTransfer(A, T, 300, 1000))
    )
    assert state.balance == 1000


def test_refund_without_a_debit_is_rejected() -> None:
    given(ACCOUNT, *FUNDED).when(RefundForTransfer(A, T, 300)).then_error(
        InvalidTransferState, status="NO_LEG", action="refund"
    )


def test_refund_of_a_credit_is_rejected() -> None:
    credited = (*FUNDED, MoneyCreditedForTransfer(A, T, 50, 1050))
    given(ACCOUNT, *credited).when(RefundForTransfer(A, T, 50)).then_error(
        InvalidTransferState, status="CREDITED"
    )


def test_refund_must_match_the_debited_amount() -> None:
    given(ACCOUNT, *DEBITED).when(RefundForTransfer(A, T, 299)).then_error(
        InvalidInput, field="amount", expected=300
    )


def test_repeated_refund_is_a_no_op() -> None:
    refunded = (*DEBITED, MoneyRefundedForTransfer(A, T, 300, 1000))
    given(ACCOUNT, *refunded).when(RefundForTransfer(A, T, 300)).then()


def test_debit_after_refund_of_the_same_transfer_is_a_no_op() -> None:
    refunded = (*DEBITED, MoneyRefundedForTransfer(A, T, 300, 1000))
    given(ACCOUNT, *refunded).when(DebitForTransfer(A, T, 300)).then()


@pytest.mark.parametrize(
    "command",
    [
        DebitForTransfer(A, "", 1),
        CreditForTransfer(A, "t x", 1, "EUR"),
        RefundForTransfer(A, None, 1),  # type: ignore[arg-type]
    ],
)
def test_leg_commands_need_a_transfer_id(command: Any) -> None:
    given(ACCOUNT, *FUNDED).when(command).then_error(InvalidInput, field="transfer_id")


@pytest.mark.parametrize(
    "command",
    [DebitForTransfer(A, T, 0), CreditForTransfer(A, T, -5, "EUR"), RefundForTransfer(A, T, 0)],
)
def test_leg_commands_validate_the_amount(command: Any) -> None:
    given(ACCOUNT, *FUNDED).when(command).then_error(InvalidInput, field="amount")


def test_unknown_command_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        ACCOUNT.decide(ACCOUNT.initial_state(), object())  # type: ignore[arg-type]


def test_stream_id_is_the_account_id() -> None:
    assert ACCOUNT.stream_id(Deposit(A, 1)) == A
    assert ACCOUNT.stream_type == "account"
