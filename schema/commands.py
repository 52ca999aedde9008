"""Sending commands from mutation resolvers: input checks, context, error mapping, positions.

``send`` is the one path from a mutation to ``ApplicationService.handle``: it
builds the ``CommandContext`` (command id, actor, expected version), runs the
command and turns every ``DomainError`` (including the service's
``ConcurrencyConflict``) into a typed GraphQL error via ``error_from_domain``.
Each mutation's result is a union of its success payload and typed errors
(``schema.errors``); a refused command appends nothing. New ids are made by the
API (``new_id_for``), never by clients. Money arrives as ``Decimal`` strings
and is parsed with ``domain.money.parse_amount`` (``amount_of``).
"""

from __future__ import annotations

from typing import Any

from application.ids import derived_id, random_hex
from application.service import CommandContext, CommandOutcome
from domain.aggregate import DomainError
from domain.money import parse_amount
from schema.context import Context
from schema.errors import ErrorType, InvalidInput, error_from_domain

MAX_COMMAND_ID_LENGTH = 100
POSITION = "Global position of the command's last event; null until sequenced."


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


def first_error(*checks: InvalidInput | None) -> InvalidInput | None:
    return next((check for check in checks if check is not None), None)


def amount_of(text: str, field: str = "amount") -> int | InvalidInput:
    """``text`` as int minor units, or the typed ``InvalidInput`` naming ``field``."""
    try:
        return parse_amount(text, field)
    except DomainError as error:
        return InvalidInput(message=error.message, field=field)


def namespaced_command_id(user: str, command_id: str) -> str:
    """``command_id`` in ``user``'s namespace: ``<user, with "%" and ":" escaped>:<command_id>``.

    The user part holds no ":", so the first ":" splits the pair back and no
    two (user, key) pairs collide (user ``carl:k`` with key ``open`` is
    ``carl%3Ak:open``, user ``carl`` with key ``k:open`` is ``carl:k:open``).
    A user name without "%" or ":" is unchanged (``<user>:<key>``), so command
    ids already in the command log keep matching. Internal command ids
    (``cmd-<hex>``, ``seed-<hex>``) hold no ":" and so are in no user's namespace.
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


def last_position(outcome: CommandOutcome) -> int | None:
    """The global position of the outcome's last event, when the store already stamped it."""
    return outcome.events[-1].position if outcome.events else None


async def current_position(
    ctx: Context, stream_id: str, version: int, known: int | None
) -> int | None:
    """The global position of a stream's event ``version``, once the sequencer stamped it.

    Stores that sequence after commit (MongoDB) return unstamped events from
    ``append``; the store then waits a bounded time for this process's
    sequencer to stamp the commit (no read), or reads it once.
    """
    if known is not None:
        return known
    return await ctx.events.position_of(stream_id, version)
