"""Generic read helpers for query resolvers: page sizes, cursor windows, consistency, the audit log.

Everything a query returns comes from the read-model views, the Application
Service (time travel, history) or the store's read side (audit log), all
reached through the request ``Context``. Authorization is checked next to the
read it guards, in the feature modules (``schema.accounts``...).

The views page with opaque keyset cursors, forwards (``first``/``after``) or
backwards (``last``/``before``), and refuse bad cursors, page sizes or mixed
directions with ``InvalidInput``; here that becomes a ``BAD_USER_INPUT``
GraphQL error naming the argument. ``ensure_consistency`` implements the
``consistency`` argument (read-your-writes) for the read models the features
declare (``Context.catalog``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry import relay

from domain.aggregate import InvalidInput
from projections.documents import Page, check_directions
from schema.audit_types import Event
from schema.context import Context
from schema.errors import CONSISTENCY_TIMEOUT, UNAVAILABLE, ClientError, forbidden_query
from schema.limits import PageSizeError, page_size
from store.protocol import RecordedEvent

T = TypeVar("T")
MAX_EVENT_TYPES = 50
MAX_ID_LENGTH = 100
"""Longer ids cannot exist (``domain.validation``); such lookups answer "none" at once."""
NODE_ID = "Globally unique: the same id every argument takes; `node(id:)` finds it."

PageInfo = relay.PageInfo


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


def plausible_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH


def require_admin(ctx: Context, what: str) -> None:
    if not ctx.user.is_admin:
        raise forbidden_query(f"{what} is only available to admins")


async def recorded_at(ctx: Context, stream_id: str, version: int) -> datetime | None:
    """When event ``version`` of ``stream_id`` was recorded; None when there is none."""
    events: list[RecordedEvent] = await ctx.events.read_stream(stream_id, version, version)
    return events[0].recorded_at if events else None


@dataclass(frozen=True)
class Window:
    """One direction of a connection's arguments, page size checked against the limits."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @classmethod
    def of(
        cls,
        ctx: Context,
        first: int | None,
        after: str | None,
        last: int | None,
        before: str | None,
    ) -> Window:
        """``first``/``after`` (the default) or ``last``/``before``; a ``ClientError`` if mixed."""
        try:
            check_directions(first, after, last, before)
        except InvalidInput as error:
            raise ClientError(f"{error.field}: {error.message}") from error
        if last is not None or before is not None:
            return cls(last=last_of(ctx, last), before=before)
        return cls(first=first_of(ctx, first), after=after)


async def paged(call: Awaitable[T]) -> T:
    """Await a view's page; its ``InvalidInput`` becomes a client error naming the argument."""
    try:
        return await call
    except InvalidInput as error:
        raise ClientError(f"{error.field}: {error.message}") from error


def page_info(page: Page[Any]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.start_cursor,
        end_cursor=page.end_cursor,
    )


# -- read-your-writes -----------------------------------------------------------------


@strawberry.input(
    description="Wait until read models reflect a write: give `position`, or `streamId` "
    "and `version` (from a mutation payload)."
)
class Consistency:
    position: int | None = None
    stream_id: strawberry.ID | None = None
    version: int | None = None


async def ensure_consistency(ctx: Context, consistency: Consistency | None) -> None:
    """Wait (bounded) until read models reflect the given position or stream version.

    ``position``: every read model (``Catalog.read_models``) processed it.
    ``streamId`` + ``version``: the stream's own document (the read model its
    id prefix names in ``Catalog.stream_documents``) reflects that version.
    """
    if consistency is None:
        return
    if ctx.waiting is None:
        raise ClientError("consistency waits are not available here", UNAVAILABLE)
    timeout = ctx.limits.consistency_timeout_seconds
    position, stream_id, version = consistency.position, consistency.stream_id, consistency.version
    if position is not None:
        if position < 0:
            raise ClientError("consistency.position must be >= 0")
        read_models = ctx.catalog.read_models
        reached = await ctx.waiting.until_all_processed(read_models, position, timeout)
    elif stream_id is not None and version is not None:
        collection = _collection_of(ctx, str(stream_id))
        reached = await ctx.waiting.until_version(collection, str(stream_id), version, timeout)
    else:
        raise ClientError("consistency needs position, or streamId and version")
    if not reached:
        raise ClientError(
            "read models did not reach the requested consistency in time; retry later",
            CONSISTENCY_TIMEOUT,
        )


def _collection_of(ctx: Context, stream_id: str) -> str:
    documents = ctx.catalog.stream_documents
    for prefix, collection in documents.items():
        if stream_id.startswith(prefix):
            return collection
    kinds = " or ".join(f"{prefix}<id>" for prefix in documents) or "no"
    raise ClientError(f"consistency.streamId must be a stream id ({kinds})")


async def read_node(ctx: Context, node_id: str) -> object | None:
    """What ``node_id`` names, read by the feature its prefix belongs to (``Catalog.nodes``).

    None for an id of no known kind, malformed, unknown or not the caller's.
    """
    for prefix, read in ctx.catalog.nodes.items():
        if node_id.startswith(prefix):
            return await read(ctx, node_id)
    return None


# -- the audit log --------------------------------------------------------------------


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
