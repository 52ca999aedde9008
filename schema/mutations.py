"""Mutations: each validates its input, sends one command, returns a result union.

Every mutation's result is a union of its success payload and typed errors
(``schema.errors``); a refused command appends nothing. New ids are made here
(``application.ids``), never by clients: ids in inputs must name existing
accounts. A command sent with a ``commandId`` derives the id it creates from
it (``new_id_for``), so that a repeat is the same command. Money arrives as
``Decimal`` strings and is parsed with
``domain.money.parse_amount``; invalid values become ``InvalidInput``.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from application.service import CommandOutcome
from domain.account import CloseAccount, Deposit, OpenAccount, Withdraw
from domain.aggregate import DomainError
from domain.money import parse_amount, parse_currency
from domain.transfer import RequestTransfer
from domain.validation import check_owner
from schema import errors as e
from schema.commands import (
    account_access,
    check_account_id,
    check_command_id,
    check_expected_version,
    command_context,
    new_id_for,
    owner_access,
    send,
    transfer_access,
)
from schema.context import Context
from schema.inputs import flat_input
from schema.operations import RetryProjectionResult, retry_projection
from schema.payloads import AccountPayload, TransferPayload
from schema.scalars import DecimalString

AccountResult = Annotated[AccountPayload | e.ErrorType, strawberry.union("AccountResult")]
TransferResult = Annotated[TransferPayload | e.ErrorType, strawberry.union("TransferResult")]


@flat_input
@strawberry.input
class OpenAccountInput:
    owner: str
    currency: str
    command_id: str | None = strawberry.field(
        default=None, description="Idempotency key: a repeat returns the first outcome."
    )


@flat_input
@strawberry.input
class AmountInput:
    account_id: strawberry.ID
    amount: DecimalString
    command_id: str | None = None
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with ConcurrencyConflict unless at this version."
    )


@flat_input
@strawberry.input
class CloseAccountInput:
    account_id: strawberry.ID
    command_id: str | None = None
    expected_version: int | None = None


@flat_input
@strawberry.input
class RequestTransferInput:
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: DecimalString
    command_id: str | None = None


def _first_error(*checks: e.InvalidInput | None) -> e.InvalidInput | None:
    return next((check for check in checks if check is not None), None)


def _amount(text: str) -> int | e.InvalidInput:
    try:
        return parse_amount(text)
    except DomainError as error:
        return e.InvalidInput(message=error.message, field="amount")


def _account_payload(outcome: CommandOutcome | e.ErrorType) -> AccountResult:
    if isinstance(outcome, CommandOutcome):
        return AccountPayload.from_outcome(outcome)
    return outcome


async def _change_account(
    ctx: Context, data: AmountInput | CloseAccountInput, command: object
) -> AccountResult:
    """Checks common to commands on an existing account, then send."""
    invalid = _first_error(
        check_account_id(str(data.account_id)),
        check_command_id(data.command_id),
        check_expected_version(data.expected_version),
    )
    if invalid is not None:
        return invalid
    refused = await account_access(ctx, str(data.account_id))
    if refused is not None:
        return refused
    context = command_context(ctx, data.command_id, data.expected_version)
    return _account_payload(await send(ctx, command, context))


async def _amount_command(
    ctx: Context, data: AmountInput, kind: type[Deposit] | type[Withdraw]
) -> AccountResult:
    amount = _amount(data.amount)
    if isinstance(amount, e.InvalidInput):
        return amount
    return await _change_account(ctx, data, kind(account_id=str(data.account_id), amount=amount))


async def open_account(info: strawberry.Info[Context], input: OpenAccountInput) -> AccountResult:
    ctx = info.context
    invalid = check_command_id(input.command_id)
    if invalid is not None:
        return invalid
    try:
        owner, currency = check_owner(input.owner), parse_currency(input.currency)
    except DomainError as error:
        return e.error_from_domain(error)
    refused = owner_access(ctx, owner)
    if refused is not None:
        return refused
    context = command_context(ctx, input.command_id)
    command = OpenAccount(account_id=new_id_for("acc", context), owner=owner, currency=currency)
    return _account_payload(await send(ctx, command, context))


async def deposit(info: strawberry.Info[Context], input: AmountInput) -> AccountResult:
    return await _amount_command(info.context, input, Deposit)


async def withdraw(info: strawberry.Info[Context], input: AmountInput) -> AccountResult:
    return await _amount_command(info.context, input, Withdraw)


async def close_account(info: strawberry.Info[Context], input: CloseAccountInput) -> AccountResult:
    command = CloseAccount(account_id=str(input.account_id))
    return await _change_account(info.context, input, command)


async def request_transfer(
    info: strawberry.Info[Context], input: RequestTransferInput
) -> TransferResult:
    ctx = info.context
    invalid = _first_error(
        check_account_id(str(input.from_account_id), "fromAccountId"),
        check_account_id(str(input.to_account_id), "toAccountId"),
        check_command_id(input.command_id),
    )
    if invalid is not None:
        return invalid
    amount = _amount(input.amount)
    if isinstance(amount, e.InvalidInput):
        return amount
    refused = await transfer_access(ctx, str(input.from_account_id), str(input.to_account_id))
    if refused is not None:
        return refused
    context = command_context(ctx, input.command_id)
    command = RequestTransfer(
        transfer_id=new_id_for("trf", context),
        from_account_id=str(input.from_account_id),
        to_account_id=str(input.to_account_id),
        amount=amount,
    )
    outcome = await send(ctx, command, context)
    if isinstance(outcome, CommandOutcome):
        return TransferPayload.from_outcome(outcome)
    return outcome


@strawberry.type
class Mutation:
    open_account: AccountResult = strawberry.mutation(
        resolver=open_account,
        description="Open an account for `owner` in `currency` (a 3-letter ISO code).",
    )
    deposit: AccountResult = strawberry.mutation(
        resolver=deposit, description="Put money into an account."
    )
    withdraw: AccountResult = strawberry.mutation(
        resolver=withdraw, description="Take money out of an account (never below zero)."
    )
    close_account: AccountResult = strawberry.mutation(
        resolver=close_account, description="Close an account; its balance must be zero."
    )
    request_transfer: TransferResult = strawberry.mutation(
        resolver=request_transfer,
        description="Move money between accounts. The transfer then runs asynchronously: "
        "follow it with `transfer(id)` or `transferChanged(id)`.",
    )
    retry_projection: RetryProjectionResult = strawberry.mutation(
        resolver=retry_projection,
        description="Admin: ask a projection stopped on a failing event (`stopped_on_error`) "
        "to try that event again, after the cause was fixed. Unknown names are InvalidInput.",
    )
