"""Sending commands from resolvers: auth checks, context, error mapping.

``send`` is the one path from a mutation to ``ApplicationService.handle``: it
builds the ``CommandContext`` (command id, actor, expected version), runs the
command and turns every ``DomainError`` (including the service's
``ConcurrencyConflict``) into a typed GraphQL error via ``error_from_domain``.
"""

from __future__ import annotations

import re
from typing import Any

from application.ids import derived_id, random_hex
from application.service import CommandContext, CommandOutcome
from domain.account import ACCOUNT
from domain.aggregate import DomainError
from domain.errors import AccountNotFound
from schema.context import Context
from schema.errors import ErrorType, Forbidden, InvalidInput, error_from_domain, forbidden

MAX_COMMAND_ID_LENGTH = 100
ACCOUNT_ID = re.compile(r"acc-[0-9a-f]{32}", re.ASCII)
TRANSFER_ID = re.compile(r"trf-[0-9a-f]{32}", re.ASCII)


def check_command_id(raw: str | None) -> InvalidInput | None:
    """None when ``raw`` is absent or usable as an idempotency key."""
    if raw is None:
        return None
    if not 0 < len(raw) <= MAX_COMMAND_ID_LENGTH or not raw.isascii() or not raw.isprintable():
        return InvalidInput(
            message=f"commandId must be 1..{MAX_COMMAND_ID_LENGTH} printable ASCII characters",
            field="commandId",
        )
    return None


def check_expected_version(value: int | None) -> InvalidInput | None:
    if value is not None and value < 0:
        return InvalidInput(message="expectedVersion must be >= 0", field="expectedVersion")
    return None


def check_account_id(value: str, field: str = "accountId") -> InvalidInput | None:
    if ACCOUNT_ID.fullmatch(value) is None:
        return InvalidInput(message=f"{field} is not an account id (acc-<32 hex>)", field=field)
    return None


def namespaced_command_id(user: str, command_id: str) -> str:
    """``command_id`` in ``user``'s namespace: ``<user, with "%" and ":" escaped>:<command_id>``.

    The user part holds no ":", so the first ":" splits the pair back and no
    two (user, key) pairs collide (user ``carl:k`` with key ``open`` is
    ``carl%3Ak:open``, user ``carl`` with key ``k:open`` is ``carl:k:open``).
    A user name without "%" or ":" keeps the ``<user>:<key>`` form earlier
    versions wrote. Internal command ids (``cmd-<hex>``, ``seed-<hex>``) hold
    no ":" and so are in no user's namespace.
    """
    escaped = user.replace("%", "%25").replace(":", "%3A")
    return f"{escaped}:{command_id}"


def command_context(
    ctx: Context, command_id: str | None, expected_version: int | None = None
) -> CommandContext:
    """The command's metadata; every API command id is namespaced by its user's name.

    Namespacing keeps one user (admins included) from replaying another's
    idempotency key and being handed the first outcome (which may belong to
    someone else).
    """
    user = ctx.user
    if command_id is not None:
        command_id = namespaced_command_id(user.name, command_id)
    return CommandContext(
        command_id=command_id,
        correlation_id=command_id or f"req-{random_hex()}",
        causation_id=None,
        actor=user.name or None,
        expected_version=expected_version,
    )


def new_id_for(prefix: str, context: CommandContext) -> str:
    """The id a creating command makes: derived from its command id, random without one.

    A repeat of the command (same key, same input) then creates the same
    aggregate, is the same command and gets the first outcome.
    """
    if context.command_id is None:
        return f"{prefix}-{random_hex()}"
    return derived_id(prefix, context.command_id)


async def send(ctx: Context, command: Any, context: CommandContext) -> CommandOutcome | ErrorType:
    """Handle ``command``; a rejection comes back as a typed error, never raised.

    A repeated ``commandId`` returns the first outcome only for the same
    command (the service compares fingerprints); a key reused for anything
    else is ``IdempotencyKeyReused``.
    """
    try:
        return await ctx.service.handle(command, context)
    except DomainError as error:
        return error_from_domain(error)


async def account_access(ctx: Context, account_id: str) -> ErrorType | None:
    """None when the caller may change ``account_id``; otherwise the typed refusal.

    Admins are not checked here (the command itself reports an unknown
    account); a user must own the account, which is read from the event
    stream (never a possibly lagging read model).
    """
    if ctx.user.is_admin:
        return None
    if not ctx.user.authenticated:
        return forbidden("sign in to change accounts")
    loaded = await ctx.service.load(ACCOUNT, account_id)
    if not loaded.state.exists:
        return error_from_domain(AccountNotFound(account_id))
    if not ctx.user.owns(str(loaded.state.owner)):
        return forbidden(f"account {account_id} belongs to another user")
    return None


def owner_access(ctx: Context, owner: str) -> Forbidden | None:
    if ctx.user.owns(owner.strip()):
        return None
    return forbidden("users may open accounts only for themselves")


async def transfer_access(ctx: Context, from_id: str, to_id: str) -> ErrorType | None:
    """Both accounts must exist; a non-admin must own the source account.

    Checked up front so that an obviously doomed transfer is refused at once
    instead of failing later in the process manager.
    """
    refused = await account_access(ctx, from_id)
    if refused is not None:
        return refused
    for account_id in (from_id, to_id) if ctx.user.is_admin else (to_id,):
        loaded = await ctx.service.load(ACCOUNT, account_id)
        if not loaded.state.exists:
            return error_from_domain(AccountNotFound(account_id))
    return None
