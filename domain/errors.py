"""Typed rejections of the bank domain.

Every class subclasses ``DomainError`` and has a stable ``code``. Constructor
keyword names equal the keys of ``details`` (plus ``message``), and all detail
values are plain (``str``/``int``/``None``; money as int minor units, an
unbounded balance as ``domain.codec.storable_int`` gives it), so a stored
rejection is rebuilt exactly with ``restore(code, message, details)``.
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import DomainError
from domain.codec import storable_int, stored_int


class InvalidInput(DomainError):
    """A command value is malformed (``field`` names it: "amount", "owner"...)."""

    code = "invalid_input"

    def __init__(self, field: str, message: str | None = None, **details: Any) -> None:
        super().__init__(message or f"invalid {field}", field=field, **details)
        self.field = field


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


class TransferNotFound(DomainError):
    code = "transfer_not_found"

    def __init__(self, transfer_id: str, message: str | None = None) -> None:
        super().__init__(message or f"transfer {transfer_id} not found", transfer_id=transfer_id)
        self.transfer_id = transfer_id


class TransferAlreadyExists(DomainError):
    code = "transfer_already_exists"

    def __init__(self, transfer_id: str, message: str | None = None) -> None:
        text = message or f"transfer {transfer_id} already exists"
        super().__init__(text, transfer_id=transfer_id)
        self.transfer_id = transfer_id


class InvalidTransferState(DomainError):
    """A transfer step is impossible now: ``status`` is what was found, ``action`` what was asked.

    Raised by the transfer (status "REQUESTED", "DEBITED"...) and by an
    account asked for an impossible leg (status "NOT_DEBITED", "CREDITED"...).
    """

    code = "invalid_transfer_state"

    def __init__(
        self, transfer_id: str, status: str, action: str, message: str | None = None
    ) -> None:
        text = message or f"transfer {transfer_id} is {status}: cannot {action}"
        super().__init__(text, transfer_id=transfer_id, status=status, action=action)
        self.transfer_id = transfer_id
        self.status = status
        self.action = action


ERROR_TYPES: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        AccountNotFound,
        AccountAlreadyExists,
        AccountIsClosed,
        InsufficientFunds,
        BalanceNotZero,
        CurrencyMismatch,
        TransferNotFound,
        TransferAlreadyExists,
        InvalidTransferState,
    )
}


def restore(code: str, message: str, details: dict[str, Any]) -> DomainError:
    """Rebuild a stored rejection; unknown codes come back as a plain ``DomainError``."""
    cls = ERROR_TYPES.get(code)
    if cls is None:
        error = DomainError(message, **details)
        error.code = code
        return error
    return cls(message=message, **details)
