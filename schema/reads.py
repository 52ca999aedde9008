"""Query helpers shared by ``schema.queries``, ``schema.types`` and payloads.

Everything a query returns comes from the read-model views, the Application
Service (time travel, history) or the store's read side (audit log), all
reached through the request ``Context``. Authorization is checked here, next
to the read it guards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry

from domain.account import ACCOUNT
from schema.context import Context
from schema.errors import ClientError, forbidden_query
from schema.limits import PageSizeError, page_size
from schema.types import Account, Event, PageInfo
from store.protocol import RecordedEvent

MAX_EVENT_TYPES = 50


def first_of(ctx: Context, first: int | None) -> int:
    """The page size for ``first``; a ``ClientError`` when out of range."""
    try:
        return page_size(ctx.limits, first)
    except PageSizeError as exc:
        raise ClientError(str(exc)) from exc


def last_of(ctx: Context, last: int | None) -> int:
    """The page size for ``last``: the same bounds as ``first``."""
    try:
        return page_size(ctx.limits, last)
    except PageSizeError as exc:
        maximum = ctx.limits.max_page_size
        raise ClientError(f"last must be between 1 and {maximum}, got {last}") from exc


MAX_ID_LENGTH = 100
"""Longer ids cannot exist (``domain.validation``); such lookups answer "none" at once."""


def plausible_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH


def require_admin(ctx: Context, what: str) -> None:
    if not ctx.user.is_admin:
        raise forbidden_query(f"{what} is only available to admins")


async def _recorded_at(ctx: Context, stream_id: str, version: int) -> datetime | None:
    events: list[RecordedEvent] = await ctx.events.read_stream(stream_id, version, version)
    return events[0].recorded_at if events else None


async def rebuilt_account(ctx: Context, account_id: str, version: int) -> Account:
    """The account's state at ``version``, rebuilt from its events.

    The caller has already been allowed to see the account.
    """
    loaded = await ctx.service.load(ACCOUNT, account_id, at_version=version)
    opened = await _recorded_at(ctx, account_id, 1)
    updated = await _recorded_at(ctx, account_id, loaded.version)
    return Account.from_state(loaded.state, loaded.version, opened, updated)


async def account_as_of(
    ctx: Context, account_id: str, at_version: int | None, as_of: datetime | None
) -> Account | None:
    """Time travel: the account as of a version or a moment; None if it did not exist."""
    if at_version is not None and as_of is not None:
        raise ClientError("give atVersion or asOf, not both")
    if at_version is not None and at_version < 1:
        raise ClientError("atVersion must be >= 1")
    if not plausible_id(account_id):
        return None
    if as_of is not None:
        loaded = await ctx.service.load(ACCOUNT, account_id, as_of=as_of)
    else:
        loaded = await ctx.service.load(ACCOUNT, account_id, at_version=at_version)
    if not loaded.state.exists or not ctx.user.owns(str(loaded.state.owner)):
        return None
    opened = await _recorded_at(ctx, account_id, 1)
    updated = await _recorded_at(ctx, account_id, loaded.version)
    return Account.from_state(loaded.state, loaded.version, opened, updated)


@strawberry.type(description="An account's state right after one of its events.")
class AccountHistoryEntry:
    event: Event
    account: Account


async def account_history(
    ctx: Context, account_id: str, from_version: int, first: int | None
) -> list[AccountHistoryEntry]:
    """Events ``from_version`` on (at most ``first``), each with the state after it."""
    size = first_of(ctx, first)
    if from_version < 1:
        raise ClientError("fromVersion must be >= 1")
    if not plausible_id(account_id):
        return []
    entries = await ctx.service.history(ACCOUNT, account_id, to_version=from_version + size - 1)
    if not entries:
        return []
    if not ctx.user.owns(str(entries[-1].state.owner)):
        raise forbidden_query("the history of another user's account is only available to admins")
    opened = entries[0].event.recorded_at
    return [
        AccountHistoryEntry(
            event=Event.from_recorded(entry.event),
            account=Account.from_state(
                entry.state, entry.event.version, opened, entry.event.recorded_at
            ),
        )
        for entry in entries
        if entry.event.version >= from_version
    ]


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type(
    description="The audit log: events in global position order. It pages forwards only "
    "(the store reads the global order upwards), so `hasPreviousPage` is false."
)
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo


async def event_log(
    ctx: Context,
    after: int,
    first: int | None,
    stream_id: str | None,
    types: Sequence[str] | None,
) -> EventConnection:
    """Sequenced events after position ``after`` (admin only)."""
    require_admin(ctx, "the event log")
    size = first_of(ctx, first)
    if after < 0:
        raise ClientError("after must be >= 0")
    if types is not None and len(types) > MAX_EVENT_TYPES:
        raise ClientError(f"at most {MAX_EVENT_TYPES} event types")
    events: list[RecordedEvent] = await ctx.events.read_all(
        after, size + 1, stream_id=stream_id, types=list(types) if types is not None else None
    )
    page = events[:size]
    edges = [EventEdge(cursor=str(ev.position), node=Event.from_recorded(ev)) for ev in page]
    info = PageInfo(
        has_next_page=len(events) > size,
        has_previous_page=False,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return EventConnection(edges=edges, page_info=info)
