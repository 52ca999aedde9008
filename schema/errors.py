"""Typed errors returned inside mutation result unions.

Every domain rejection reaches the client as one of these types, never as a
raw GraphQL error. ``error_from_domain`` is the single mapping from domain
error classes to GraphQL types; a rejection class without an entry becomes
the generic ``CommandRejected`` (with its ``code``) rather than leaking out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from application.service import ConcurrencyConflict as ConcurrencyConflictError
from application.service import IdempotencyKeyReused as IdempotencyKeyReusedError
from domain import accounts, aggregate, transfers
from domain.aggregate import DomainError
from domain.codec import stored_int
from domain.money import format_amount
from schema.scalars import DecimalString


@strawberry.interface(description="Anything a mutation can be refused with.")
class Error:
    message: str


@strawberry.type(description="The account's balance does not cover the amount.")
class InsufficientFunds(Error):
    account_id: strawberry.ID
    balance: DecimalString
    requested: DecimalString
    currency: str


@strawberry.type
class AccountNotFound(Error):
    account_id: strawberry.ID


@strawberry.type(description="The account is closed and accepts nothing.")
class AccountClosed(Error):
    account_id: strawberry.ID


@strawberry.type
class TransferNotFound(Error):
    transfer_id: strawberry.ID


@strawberry.type(description="The stream moved on: reload at `actualVersion` and decide again.")
class ConcurrencyConflict(Error):
    stream_id: strawberry.ID
    expected_version: int
    actual_version: int


@strawberry.type(description="A value of the input is invalid; `field` names it.")
class InvalidInput(Error):
    field: str


@strawberry.type(description="The caller may not do this.")
class Forbidden(Error):
    pass


@strawberry.type(description="Only an account with a zero balance can be closed.")
class BalanceNotZero(Error):
    account_id: strawberry.ID
    balance: DecimalString
    currency: str


@strawberry.type(description="The account holds another currency.")
class CurrencyMismatch(Error):
    account_id: strawberry.ID
    expected: str
    actual: str


@strawberry.type(
    description="The `commandId` was first used for a different command (another mutation, "
    "account, amount, transfer...): nothing was done, and that command's outcome is not "
    "returned. `originalCommandType` names the first command's type. Use a new `commandId`."
)
class IdempotencyKeyReused(Error):
    original_command_type: str


@strawberry.type(description="Any other business-rule rejection, named by `code`.")
class CommandRejected(Error):
    code: str


ErrorType = (
    InsufficientFunds
    | AccountNotFound
    | AccountClosed
    | TransferNotFound
    | ConcurrencyConflict
    | InvalidInput
    | Forbidden
    | BalanceNotZero
    | CurrencyMismatch
    | IdempotencyKeyReused
    | CommandRejected
)
"""Every typed error of a command; each mutation's result union is its payload | ErrorType."""


def _money(value: Any) -> DecimalString:
    """An amount from a rejection's details: int minor units, or ``storable_int``'s digits."""
    try:
        return DecimalString(format_amount(stored_int(value)))
    except ValueError:
        return DecimalString("0.00")


def camel_case(name: str) -> str:
    """Domain field names are snake_case; the API's input fields are camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _details(error: DomainError) -> dict[str, Any]:
    return error.details


_MAPPING: dict[type[DomainError], Callable[[DomainError], ErrorType]] = {
    accounts.InsufficientFunds: lambda e: InsufficientFunds(
        message=e.message,
        account_id=strawberry.ID(str(_details(e).get("account_id", ""))),
        balance=_money(_details(e).get("balance")),
        requested=_money(_details(e).get("requested")),
        currency=str(_details(e).get("currency", "")),
    ),
    accounts.AccountNotFound: lambda e: AccountNotFound(
        message=e.message, account_id=strawberry.ID(str(_details(e).get("account_id", "")))
    ),
    accounts.AccountIsClosed: lambda e: AccountClosed(
        message=e.message, account_id=strawberry.ID(str(_details(e).get("account_id", "")))
    ),
    transfers.TransferNotFound: lambda e: TransferNotFound(
        message=e.message, transfer_id=strawberry.ID(str(_details(e).get("transfer_id", "")))
    ),
    ConcurrencyConflictError: lambda e: ConcurrencyConflict(
        message=e.message,
        stream_id=strawberry.ID(str(_details(e).get("stream_id", ""))),
        expected_version=int(_details(e).get("expected_version", 0)),
        actual_version=int(_details(e).get("actual_version", 0)),
    ),
    aggregate.InvalidInput: lambda e: InvalidInput(
        message=e.message, field=camel_case(str(_details(e).get("field", "")))
    ),
    accounts.BalanceNotZero: lambda e: BalanceNotZero(
        message=e.message,
        account_id=strawberry.ID(str(_details(e).get("account_id", ""))),
        balance=_money(_details(e).get("balance")),
        currency=str(_details(e).get("currency", "")),
    ),
    IdempotencyKeyReusedError: lambda e: IdempotencyKeyReused(
        message=e.message,
        original_command_type=str(_details(e).get("original_command_type", "")),
    ),
    accounts.CurrencyMismatch: lambda e: CurrencyMismatch(
        message=e.message,
        account_id=strawberry.ID(str(_details(e).get("account_id", ""))),
        expected=str(_details(e).get("expected", "")),
        actual=str(_details(e).get("actual", "")),
    ),
}


def error_from_domain(error: DomainError) -> ErrorType:
    """The GraphQL error for a domain rejection (the one explicit mapping).

    Looks up the class and then its bases, so a subclass maps like its parent.
    Details are read from ``error.details`` so that a rejection rebuilt from
    the command log maps the same as the original.
    """
    for cls in type(error).__mro__:
        build = _MAPPING.get(cls)
        if build is not None:
            return build(error)
    return CommandRejected(message=error.message, code=error.code)


def invalid_input(field: str, message: str) -> InvalidInput:
    return InvalidInput(message=message, field=field)


def forbidden(message: str = "not allowed for this user") -> Forbidden:
    return Forbidden(message=message)


BAD_USER_INPUT = "BAD_USER_INPUT"
"""Any invalid argument: a bad cursor, a page size out of range, a malformed filter..."""
FORBIDDEN = "FORBIDDEN"
"""The caller may not read or do this."""
CONSISTENCY_TIMEOUT = "CONSISTENCY_TIMEOUT"
"""Read models did not reach the requested ``consistency`` in time."""
UNAVAILABLE = "UNAVAILABLE"
"""This server process does not serve the feature (e.g. no live feed)."""
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
"""The document is not GraphQL (a syntax error, or more tokens than the limit)."""
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
"""The document does not validate against the schema (unknown field, too deep...)."""
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
"""A server fault; the message is masked and the detail is in the server's log."""


class ClientError(Exception):
    """A query the client got wrong (bad cursor, page too large, not allowed...).

    Raised from query resolvers; it becomes an ordinary GraphQL error with
    ``extensions.code`` and is never masked (see ``schema.app``). One code per
    kind of error: ``BAD_USER_INPUT`` (the default) for any invalid argument,
    ``FORBIDDEN``, ``CONSISTENCY_TIMEOUT``, ``UNAVAILABLE``.
    """

    def __init__(self, message: str, code: str = BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.extensions: dict[str, object] = {"code": code}


def forbidden_query(message: str = "not allowed for this user") -> ClientError:
    return ClientError(message, FORBIDDEN)
