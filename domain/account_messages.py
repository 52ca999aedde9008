"""Account commands (imperative) and events (past tense): frozen plain values.

Money is int minor units. Every event's ``balance`` is the balance *after*
the event. Amounts are bounded (``MAX_AMOUNT_MINOR``); a balance is not (a
refund may take it past ``MAX_BALANCE_MINOR``), so ``balance`` is a wide field
(``WIDE_FIELDS``, stored by ``domain.codec.storable_int``). Import these from
``domain.account``, which re-exports them.
"""

from __future__ import annotations

import dataclasses

# Commands -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenAccount:
    account_id: str
    owner: str
    currency: str


@dataclasses.dataclass(frozen=True)
class Deposit:
    account_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class Withdraw:
    account_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class CloseAccount:
    account_id: str


@dataclasses.dataclass(frozen=True)
class DebitForTransfer:
    """Outgoing leg of a transfer; repeated for the same transfer it yields no events."""

    account_id: str
    transfer_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class CreditForTransfer:
    """Incoming leg; ``currency`` must be the account's (else ``CurrencyMismatch``)."""

    account_id: str
    transfer_id: str
    amount: int
    currency: str


@dataclasses.dataclass(frozen=True)
class RefundForTransfer:
    """Gives back an earlier ``DebitForTransfer`` of the same transfer and amount."""

    account_id: str
    transfer_id: str
    amount: int


AccountCommand = (
    OpenAccount
    | Deposit
    | Withdraw
    | CloseAccount
    | DebitForTransfer
    | CreditForTransfer
    | RefundForTransfer
)


# Events ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountOpened:
    """Schema version 2; version 1 had no ``currency`` (upcast to "EUR")."""

    account_id: str
    owner: str
    currency: str


@dataclasses.dataclass(frozen=True)
class MoneyDeposited:
    account_id: str
    amount: int
    balance: int


@dataclasses.dataclass(frozen=True)
class MoneyWithdrawn:
    account_id: str
    amount: int
    balance: int


@dataclasses.dataclass(frozen=True)
class AccountClosed:
    account_id: str


@dataclasses.dataclass(frozen=True)
class MoneyDebitedForTransfer:
    """``currency`` is the account's: the transfer learns its currency from here."""

    account_id: str
    transfer_id: str
    amount: int
    currency: str
    balance: int


@dataclasses.dataclass(frozen=True)
class MoneyCreditedForTransfer:
    account_id: str
    transfer_id: str
    amount: int
    balance: int


@dataclasses.dataclass(frozen=True)
class MoneyRefundedForTransfer:
    account_id: str
    transfer_id: str
    amount: int
    balance: int


AccountEvent = (
    AccountOpened
    | MoneyDeposited
    | MoneyWithdrawn
    | AccountClosed
    | MoneyDebitedForTransfer
    | MoneyCreditedForTransfer
    | MoneyRefundedForTransfer
)

ACCOUNT_COMMANDS: tuple[type, ...] = (
    OpenAccount,
    Deposit,
    Withdraw,
    CloseAccount,
    DebitForTransfer,
    CreditForTransfer,
    RefundForTransfer,
)
ACCOUNT_EVENTS: tuple[type, ...] = (
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    AccountClosed,
    MoneyDebitedForTransfer,
    MoneyCreditedForTransfer,
    MoneyRefundedForTransfer,
)

WIDE_FIELDS: dict[type, tuple[str, ...]] = {
    MoneyDeposited: ("balance",),
    MoneyWithdrawn: ("balance",),
    MoneyDebitedForTransfer: ("balance",),
    MoneyCreditedForTransfer: ("balance",),
    MoneyRefundedForTransfer: ("balance",),
}
"""Unbounded int fields per event class: stored exactly however large they grow."""
