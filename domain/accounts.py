"""The accounts feature's domain: the Account aggregate as a decider, ``ACCOUNT``
(stream type "account"), its commands, events, rejections and upcaster, exported
as ``DOMAIN``.

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

Snapshot shape version 1: the state's fields as plain values, ``legs`` as a
list of ``[transfer_id, kind, amount, refunded]`` sorted by transfer id,
``balance`` by ``storable_int``.

Stored ``AccountOpened`` data of schema version 1 had no ``currency``: its
upcaster gives old accounts euros.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from domain.aggregate import Domain, DomainError, InvalidInput, Upcaster
from domain.codec import storable_int, stored_int
from domain.money import MAX_BALANCE_MINOR, check_amount, parse_currency
from domain.transfers import InvalidTransferState
from domain.validation import check_id, check_owner

# rejections -----------------------------------------------------------------


class AccountNotFound(DomainError):
    code = "account_not_found"

    def __init__(self, account_id: str, message: str | None = None) -> None:
        super().__init__(message or f"account {account_id} not found", account_id=account_id)
        self.account_id = account_id


class AccountAlreadyExists(DomainError):
    code = "account_already_exists"

    def __init__(self, account_id: str, message: str | None = None) -> None:
        super().__init__(message or f"account {account_id} already exists", account_id=account_id)
        self.account_id = account_id


class AccountIsClosed(DomainError):
    """The account is closed and accepts nothing (GraphQL type ``AccountClosed``)."""

    code = "account_closed"

    def __init__(self, account_id: str, message: str | None = None) -> None:
        super().__init__(message or f"account {account_id} is closed", account_id=account_id)
        self.account_id = account_id


class InsufficientFunds(DomainError):
    """``balance`` and ``requested`` are int minor units of ``currency``."""

    code = "insufficient_funds"

    def __init__(
        self,
        account_id: str,
        balance: int,
        requested: int,
        currency: str,
        message: str | None = None,
    ) -> None:
        text = message or f"account {account_id} has insufficient funds"
        super().__init__(
            text, account_id=account_id, balance=balance, requested=requested, currency=currency
        )
        self.account_id = account_id
        self.balance = balance
        self.requested = requested
        self.currency = currency


class BalanceNotZero(DomainError):
    """Closing needs a zero balance; ``balance`` is int minor units of ``currency``.

    Rebuilt from a stored rejection, ``balance`` may arrive as ``storable_int``'s
    digit string.
    """

    code = "balance_not_zero"

    def __init__(
        self, account_id: str, balance: int | str, currency: str, message: str | None = None
    ) -> None:
        text = message or f"account {account_id} cannot close with a non-zero balance"
        # A balance is unbounded (a refund may pass the maximum): the stored detail
        # is ``storable_int``'s, the attribute the exact int.
        stored = storable_int(stored_int(balance))
        super().__init__(text, account_id=account_id, balance=stored, currency=currency)
        self.account_id = account_id
        self.balance = stored_int(balance)
        self.currency = currency


class CurrencyMismatch(DomainError):
    """``expected`` is the account's currency, ``actual`` the one offered."""

    code = "currency_mismatch"

    def __init__(
        self, account_id: str, expected: str, actual: str, message: str | None = None
    ) -> None:
        text = message or f"account {account_id} holds {expected}, not {actual}"
        super().__init__(text, account_id=account_id, expected=expected, actual=actual)
        self.account_id = account_id
        self.expected = expected
        self.actual = actual


# transfer legs --------------------------------------------------------------
#
# ``LegBook`` is an immutable map ``transfer_id -> Leg``, split into fixed buckets
# so that adding a leg copies one small bucket instead of the whole map:
# replaying an account with many transfers stays linear. Buckets are chosen by
# CRC-32 (stable across processes), never by ``hash()``.

LegKind = Literal["debit", "credit"]
_BUCKETS = 64


@dataclasses.dataclass(frozen=True)
class Leg:
    """One leg: the account was debited or credited ``amount``; a debit may be refunded."""

    kind: LegKind
    amount: int
    refunded: bool = False


def _bucket(transfer_id: str) -> int:
    return zlib.crc32(transfer_id.encode()) % _BUCKETS


_EMPTY: tuple[Mapping[str, Leg], ...] = tuple({} for _ in range(_BUCKETS))


@dataclasses.dataclass(frozen=True)
class LegBook:
    """Immutable; ``with_leg`` returns a new book sharing all untouched buckets.

    Equality is structural (same legs, same book) because bucket placement
    depends only on the transfer id.
    """

    buckets: tuple[Mapping[str, Leg], ...] = _EMPTY

    def get(self, transfer_id: str) -> Leg | None:
        return self.buckets[_bucket(transfer_id)].get(transfer_id)

    def with_leg(self, transfer_id: str, leg: Leg) -> LegBook:
        index = _bucket(transfer_id)
        bucket = {**self.buckets[index], transfer_id: leg}
        return LegBook((*self.buckets[:index], bucket, *self.buckets[index + 1 :]))

    def items(self) -> Iterator[tuple[str, Leg]]:
        """All legs ordered by transfer id (a stable order for snapshots)."""
        pairs = [pair for bucket in self.buckets for pair in bucket.items()]
        return iter(sorted(pairs, key=lambda pair: pair[0]))

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets)

    @classmethod
    def of(cls, legs: Iterable[tuple[str, Leg]]) -> LegBook:
        buckets: list[dict[str, Leg]] = [{} for _ in range(_BUCKETS)]
        for transfer_id, leg in legs:
            buckets[_bucket(transfer_id)][transfer_id] = leg
        return cls(tuple(buckets))


# commands -------------------------------------------------------------------


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

COMMANDS: tuple[type, ...] = (
    OpenAccount,
    Deposit,
    Withdraw,
    CloseAccount,
    DebitForTransfer,
    CreditForTransfer,
    RefundForTransfer,
)


# events ---------------------------------------------------------------------


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

EVENTS: tuple[type, ...] = (
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


# state ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountState:
    """``exists`` is false before ``AccountOpened``; ``balance`` is int minor units.

    ``legs`` records every transfer leg of the account (for idempotency and
    refund checks); equality is structural.
    """

    exists: bool = False
    account_id: str = ""
    owner: str = ""
    currency: str = ""
    balance: int = 0
    status: Literal["OPEN", "CLOSED"] = "OPEN"
    legs: LegBook = dataclasses.field(default_factory=LegBook)


# snapshots -----------------------------------------------------------------


def state_to_snapshot(state: AccountState) -> dict[str, Any]:
    return {
        "exists": state.exists,
        "account_id": state.account_id,
        "owner": state.owner,
        "currency": state.currency,
        "balance": storable_int(state.balance),
        "status": state.status,
        "legs": [[tid, leg.kind, leg.amount, leg.refunded] for tid, leg in state.legs.items()],
    }


def state_from_snapshot(data: Mapping[str, Any]) -> AccountState:
    status = data["status"]
    if status not in ("OPEN", "CLOSED"):
        raise ValueError(f"malformed account snapshot: status {status!r}")
    legs = LegBook.of((str(t), _leg(k, a, r)) for t, k, a, r in data["legs"])
    return AccountState(
        exists=bool(data["exists"]),
        account_id=str(data["account_id"]),
        owner=str(data["owner"]),
        currency=str(data["currency"]),
        balance=stored_int(data["balance"]),
        status=status,
        legs=legs,
    )


def _leg(kind: object, amount: object, refunded: object) -> Leg:
    if kind not in ("debit", "credit"):
        raise ValueError(f"malformed account snapshot: leg kind {kind!r}")
    return Leg("debit" if kind == "debit" else "credit", int(str(amount)), bool(refunded))


# guards ---------------------------------------------------------------------


def require_exists(state: AccountState, account_id: str) -> None:
    if not state.exists:
        raise AccountNotFound(account_id)


def require_open(state: AccountState, account_id: str) -> None:
    """The account exists and is not closed (a closed account accepts nothing)."""
    require_exists(state, account_id)
    if state.status == "CLOSED":
        raise AccountIsClosed(account_id)


def check_balance_limit(state: AccountState, amount: int) -> int:
    """Return the balance after adding ``amount``, refusing to pass MAX_BALANCE_MINOR."""
    balance = state.balance + amount
    if balance > MAX_BALANCE_MINOR:
        raise InvalidInput(
            "amount",
            "the account balance would exceed its maximum",
            value=amount,
            balance=storable_int(state.balance),
            maximum=MAX_BALANCE_MINOR,
        )
    return balance


def leg_status(leg: Leg | None) -> str:
    """How an account's leg of a transfer stands, for ``InvalidTransferState``."""
    if leg is None:
        return "NO_LEG"
    if leg.kind == "credit":
        return "CREDITED"
    return "REFUNDED" if leg.refunded else "DEBITED"


def check_leg_replay(state: AccountState, transfer_id: str, kind: LegKind, amount: int) -> bool:
    """True if this exact leg was already recorded (a replay: no new events).

    Raises if the transfer already has a different leg on this account.
    """
    leg = state.legs.get(transfer_id)
    if leg is None:
        return False
    if leg.kind != kind:
        raise InvalidTransferState(transfer_id, leg_status(leg), kind)
    _check_same_amount(transfer_id, leg, amount)
    return True


def check_refundable(state: AccountState, transfer_id: str, amount: int) -> bool:
    """True if a refund must be recorded, False if it already was (a replay).

    A refund only gives back an earlier debit of the same transfer and amount.
    """
    leg = state.legs.get(transfer_id)
    if leg is None or leg.kind != "debit":
        raise InvalidTransferState(transfer_id, leg_status(leg), "refund")
    _check_same_amount(transfer_id, leg, amount)
    return not leg.refunded


def _check_same_amount(transfer_id: str, leg: Leg, amount: int) -> None:
    if leg.amount != amount:
        raise InvalidInput(
            "amount",
            f"transfer {transfer_id} moved {leg.amount} minor units here, not {amount}",
            value=amount,
            expected=leg.amount,
            transfer_id=transfer_id,
        )


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

    Names every field instead of ``dataclasses.replace`` because every deposit
    and withdrawal runs it; a test pins the field list, so a new field cannot be
    dropped here silently.
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


# upcasters ------------------------------------------------------------------

DEFAULT_V1_CURRENCY = "EUR"
"""Accounts opened before currencies existed (AccountOpened v1) held euros."""


def account_opened_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """AccountOpened v1 had no ``currency``; v2 adds it, "EUR" for old accounts."""
    return {**data, "currency": data.get("currency") or DEFAULT_V1_CURRENCY}


DOMAIN = Domain(
    deciders=dict.fromkeys(COMMANDS, ACCOUNT),
    events=EVENTS,
    schema_versions={AccountOpened: 2},
    wide_fields=WIDE_FIELDS,
    upcasters=(Upcaster("AccountOpened", 1, account_opened_v1_to_v2),),
    errors=(
        AccountNotFound,
        AccountAlreadyExists,
        AccountIsClosed,
        InsufficientFunds,
        BalanceNotZero,
        CurrencyMismatch,
        InvalidTransferState,
    ),
)
