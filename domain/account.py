"""The Account aggregate as a decider: ``ACCOUNT`` (stream type "account").

The stream id is the account id. Invariants: amounts are exact ints in
(0, MAX_AMOUNT_MINOR]; a balance never goes below zero, and no deposit or
credit takes it above MAX_BALANCE_MINOR; a closed account accepts nothing new;
closing needs a zero balance; transfer legs are recorded in the account's own
stream, a leg command repeated for the same transfer yields no events, and a
refund only gives back an earlier debit of the same transfer and amount.

A refund (the compensation of a transfer whose credit was refused) can never
be refused by anything the owner can change between the debit and the refund:

- it is accepted on a closed account (an account can be closed, at zero
  balance, while its transfer is in flight; the refunded balance then stays
  visible on the closed account);
- it is not subject to MAX_BALANCE_MINOR: a deposit landing between debit and
  refund may have filled the account up. The balance may then exceed the
  maximum; deposits and credits are refused until it is back under it.
  Balances are therefore unbounded ints and stored as wide fields
  (``domain.codec.storable_int``).

Its only refusals are a refund with no matching debit leg (a bug upstream),
which the process manager parks for an operator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from domain.account_messages import (
    AccountClosed,
    AccountCommand,
    AccountEvent,
    AccountOpened,
    CloseAccount,
    CreditForTransfer,
    DebitForTransfer,
    Deposit,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
    OpenAccount,
    RefundForTransfer,
    Withdraw,
)
from domain.account_rules import (
    check_balance_limit,
    check_leg_replay,
    check_refundable,
    require_exists,
    require_open,
)
from domain.account_state import AccountState, state_from_snapshot, state_to_snapshot
from domain.errors import AccountAlreadyExists, BalanceNotZero, CurrencyMismatch, InsufficientFunds
from domain.legs import Leg, LegBook
from domain.money import check_amount, parse_currency
from domain.validation import check_id, check_owner

__all__ = [
    "ACCOUNT",
    "AccountClosed",
    "AccountCommand",
    "AccountDecider",
    "AccountEvent",
    "AccountOpened",
    "AccountState",
    "AccountStatus",
    "CloseAccount",
    "CreditForTransfer",
    "DebitForTransfer",
    "Deposit",
    "MoneyCreditedForTransfer",
    "MoneyDebitedForTransfer",
    "MoneyDeposited",
    "MoneyRefundedForTransfer",
    "MoneyWithdrawn",
    "OpenAccount",
    "RefundForTransfer",
    "Withdraw",
]

AccountStatus = Literal["OPEN", "CLOSED"]
Events = list[AccountEvent]


# decide ---------------------------------------------------------------------


def _open(state: AccountState, cmd: OpenAccount) -> Events:
    account_id = check_id(cmd.account_id, "account_id")
    owner = check_owner(cmd.owner)
    currency = parse_currency(cmd.currency)
    if state.exists:
        raise AccountAlreadyExists(account_id)
    return [AccountOpened(account_id, owner, currency)]


def _deposit(state: AccountState, cmd: Deposit) -> Events:
    amount = check_amount(cmd.amount)
    require_open(state, cmd.account_id)
    balance = check_balance_limit(state, amount)
    return [MoneyDeposited(state.account_id, amount, balance)]


def _withdraw(state: AccountState, cmd: Withdraw) -> Events:
    amount = check_amount(cmd.amount)
    require_open(state, cmd.account_id)
    if amount > state.balance:
        raise InsufficientFunds(state.account_id, state.balance, amount, state.currency)
    return [MoneyWithdrawn(state.account_id, amount, state.balance - amount)]


def _close(state: AccountState, cmd: CloseAccount) -> Events:
    require_open(state, cmd.account_id)
    if state.balance != 0:
        raise BalanceNotZero(state.account_id, state.balance, state.currency)
    return [AccountClosed(state.account_id)]


def _debit(state: AccountState, cmd: DebitForTransfer) -> Events:
    amount = check_amount(cmd.amount)
    transfer_id = check_id(cmd.transfer_id, "transfer_id")
    require_exists(state, cmd.account_id)
    if check_leg_replay(state, transfer_id, "debit", amount):
        return []
    require_open(state, cmd.account_id)
    if amount > state.balance:
        raise InsufficientFunds(state.account_id, state.balance, amount, state.currency)
    balance = state.balance - amount
    return [MoneyDebitedForTransfer(state.account_id, transfer_id, amount, state.currency, balance)]


def _credit(state: AccountState, cmd: CreditForTransfer) -> Events:
    amount = check_amount(cmd.amount)
    transfer_id = check_id(cmd.transfer_id, "transfer_id")
    currency = parse_currency(cmd.currency)
    require_exists(state, cmd.account_id)
    if currency != state.currency:
        raise CurrencyMismatch(state.account_id, state.currency, currency)
    if check_leg_replay(state, transfer_id, "credit", amount):
        return []
    require_open(state, cmd.account_id)
    balance = check_balance_limit(state, amount)
    return [MoneyCreditedForTransfer(state.account_id, transfer_id, amount, balance)]


def _refund(state: AccountState, cmd: RefundForTransfer) -> Events:
    amount = check_amount(cmd.amount)
    transfer_id = check_id(cmd.transfer_id, "transfer_id")
    require_exists(state, cmd.account_id)
    if not check_refundable(state, transfer_id, amount):
        return []
    # Neither require_open nor check_balance_limit: a refund returns money this
    # account itself sent, and the owner may have closed the account or filled
    # it up since. Refusing would strand the money and stall the workflow.
    balance = state.balance + amount
    return [MoneyRefundedForTransfer(state.account_id, transfer_id, amount, balance)]


_DECIDE: dict[type, Callable[[AccountState, Any], Events]] = {
    OpenAccount: _open,
    Deposit: _deposit,
    Withdraw: _withdraw,
    CloseAccount: _close,
    DebitForTransfer: _debit,
    CreditForTransfer: _credit,
    RefundForTransfer: _refund,
}


# evolve ---------------------------------------------------------------------


def _opened(state: AccountState, e: AccountOpened) -> AccountState:
    return AccountState(True, e.account_id, e.owner, e.currency, 0, "OPEN", state.legs)


def _moved(state: AccountState, balance: int, legs: LegBook | None = None) -> AccountState:
    """``state`` with a new balance (and leg book), every other field kept.

    Every deposit and withdrawal evolves a state; ``dataclasses.replace``
    walks ``fields()`` and a ``getattr`` per field each call (~3x the cost of
    naming the fields). ``tests/domain/test_account_evolve.py`` pins the field
    list, so a new field cannot be dropped here silently.
    """
    return AccountState(
        state.exists,
        state.account_id,
        state.owner,
        state.currency,
        balance,
        state.status,
        state.legs if legs is None else legs,
    )


def _balance(state: AccountState, e: MoneyDeposited | MoneyWithdrawn) -> AccountState:
    return _moved(state, e.balance)


def _closed(state: AccountState, e: AccountClosed) -> AccountState:
    return dataclasses.replace(state, status="CLOSED")


def _debited(state: AccountState, e: MoneyDebitedForTransfer) -> AccountState:
    return _moved(state, e.balance, state.legs.with_leg(e.transfer_id, Leg("debit", e.amount)))


def _credited(state: AccountState, e: MoneyCreditedForTransfer) -> AccountState:
    return _moved(state, e.balance, state.legs.with_leg(e.transfer_id, Leg("credit", e.amount)))


def _refunded(state: AccountState, e: MoneyRefundedForTransfer) -> AccountState:
    legs = state.legs.with_leg(e.transfer_id, Leg("debit", e.amount, refunded=True))
    return _moved(state, e.balance, legs)


_EVOLVE: dict[type, Callable[[AccountState, Any], AccountState]] = {
    AccountOpened: _opened,
    MoneyDeposited: _balance,
    MoneyWithdrawn: _balance,
    AccountClosed: _closed,
    MoneyDebitedForTransfer: _debited,
    MoneyCreditedForTransfer: _credited,
    MoneyRefundedForTransfer: _refunded,
}


class AccountDecider:
    """The Account aggregate; see the module docstring for its invariants."""

    stream_type: str = "account"
    snapshot_version: int = 1

    def stream_id(self, command: AccountCommand) -> str:
        return command.account_id

    def initial_state(self) -> AccountState:
        return AccountState()

    def evolve(self, state: AccountState, event: AccountEvent) -> AccountState:
        return _EVOLVE[type(event)](state, event)

    def decide(self, state: AccountState, command: AccountCommand) -> Sequence[AccountEvent]:
        handler = _DECIDE.get(type(command))
        if handler is None:
            raise TypeError(f"not an account command: {type(command).__name__}")
        return handler(state, command)

    def to_snapshot(self, state: AccountState) -> Mapping[str, Any]:
        return state_to_snapshot(state)

    def from_snapshot(self, data: Mapping[str, Any]) -> AccountState:
        return state_from_snapshot(data)


ACCOUNT = AccountDecider()
