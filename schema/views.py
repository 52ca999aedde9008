"""Read-model queries: connections over ``projections.readmodels`` views, with auth.

Users see only their own accounts and the transfers from or to them; admins
see everything. ``read_node`` answers ``node(id:)`` through the same reads as
``account(id:)`` and ``transfer(id:)``, so it applies the same rules. The
views page with opaque keyset cursors, forwards (``first``/``after``) or
backwards (``last``/``before``), and refuse bad cursors, page sizes or mixed
directions with ``InvalidInput``; here that becomes a ``BAD_USER_INPUT``
GraphQL error naming the argument. ``ensure_consistency`` implements the
``consistency`` argument (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import strawberry
from strawberry import relay

from domain.errors import InvalidInput
from projections.pagination import Page, check_directions
from projections.readmodels import TransfersView
from projections.records import TransferRecord
from schema.context import Context
from schema.errors import CONSISTENCY_TIMEOUT, UNAVAILABLE, ClientError, forbidden_query
from schema.reads import first_of, last_of, plausible_id
from schema.types import (
    Account,
    Ledger,
    PageInfo,
    StatementConnection,
    StatementEdge,
    StatementEntry,
    Transfer,
    TransferStatus,
)

T = TypeVar("T")
READ_MODELS = ("accounts", "account_statement", "transfers", "ledger")
"""The consumers a ``consistency: {position}`` waits for."""
COLLECTION_BY_PREFIX = {"acc-": "accounts", "trf-": "transfers"}


class Consistency(Protocol):
    position: int | None
    stream_id: strawberry.ID | None
    version: int | None


# strawberry names these generic types AccountConnection, AccountEdge and so on.
AccountEdge = relay.Edge[Account]
AccountConnection = relay.Connection[Account]
TransferEdge = relay.Edge[Transfer]
TransferConnection = relay.Connection[Transfer]


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


async def _paged(call: Awaitable[T]) -> T:
    """Await a view's page; its ``InvalidInput`` becomes a client error naming the argument."""
    try:
        return await call
    except InvalidInput as error:
        raise ClientError(f"{error.field}: {error.message}") from error


def _page_info(page: Page[Any]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.start_cursor,
        end_cursor=page.end_cursor,
    )


async def read_account(ctx: Context, account_id: str) -> Account | None:
    if not plausible_id(account_id):
        return None
    record = await ctx.accounts.get(account_id)
    if record is None or not ctx.user.owns(record.owner):
        return None
    return Account.from_record(record)


async def read_node(ctx: Context, node_id: str) -> Account | Transfer | None:
    """The account or transfer ``node_id`` names, as ``account(id:)``/``transfer(id:)`` read it.

    None for an id of neither kind, malformed, unknown or not the caller's.
    """
    if node_id.startswith("acc-"):
        return await read_account(ctx, node_id)
    if node_id.startswith("trf-"):
        return await read_transfer(ctx, node_id)
    return None


async def accounts_page(ctx: Context, window: Window, owner: str | None) -> AccountConnection:
    if not ctx.user.is_admin:
        if owner is not None and not ctx.user.owns(owner):
            raise forbidden_query("users may list only their own accounts")
        owner = ctx.user.name
    page = await _paged(
        ctx.accounts.list(
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
            owner=owner,
        )
    )
    edges = [AccountEdge(cursor=e.cursor, node=Account.from_record(e.node)) for e in page.edges]
    return AccountConnection(edges=edges, page_info=_page_info(page))


async def statement_page(ctx: Context, account_id: str, window: Window) -> StatementConnection:
    """The statement of an account the caller was allowed to see."""
    page = await _paged(
        ctx.statements.list(
            account_id,
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
        )
    )
    edges = [
        StatementEdge(cursor=e.cursor, node=StatementEntry.from_record(e.node)) for e in page.edges
    ]
    return StatementConnection(edges=edges, page_info=_page_info(page))


async def _may_see_transfer(ctx: Context, record: TransferRecord) -> bool:
    if ctx.user.is_admin:
        return True
    for account_id in (record.from_account_id, record.to_account_id):
        if await read_account(ctx, account_id) is not None:
            return True
    return False


async def read_transfer(ctx: Context, transfer_id: str) -> Transfer | None:
    if not plausible_id(transfer_id):
        return None
    record = await ctx.transfers.get(transfer_id)
    if record is None or not await _may_see_transfer(ctx, record):
        return None
    return Transfer.from_record(record)


async def transfers_page(
    ctx: Context,
    window: Window,
    status: TransferStatus | None,
    account_id: str | None,
) -> TransferConnection:
    if not ctx.user.is_admin:
        if account_id is None:
            raise forbidden_query("users must give accountId (one of their accounts)")
        if await read_account(ctx, account_id) is None:
            raise forbidden_query("users may list only transfers of their own accounts")
    view: TransfersView = ctx.transfers
    page = await _paged(
        view.list(
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
            status=status.value if status is not None else None,
            account_id=account_id,
        )
    )
    edges = [TransferEdge(cursor=e.cursor, node=Transfer.from_record(e.node)) for e in page.edges]
    return TransferConnection(edges=edges, page_info=_page_info(page))


async def ledger_totals(ctx: Context) -> list[Ledger]:
    if not ctx.user.authenticated:
        raise forbidden_query("the ledger needs a signed-in user")
    return [Ledger.from_record(totals) for totals in await ctx.ledger.all()]


async def ensure_consistency(ctx: Context, consistency: Consistency | None) -> None:
    """Wait (bounded) until read models reflect the given position or stream version.

    ``position``: every read model (``READ_MODELS``) processed it.
    ``streamId`` + ``version``: the stream's own document (an account or a
    transfer) reflects that version.
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
        reached = await ctx.waiting.until_all_processed(READ_MODELS, position, timeout)
    elif stream_id is not None and version is not None:
        reached = await ctx.waiting.until_version(
            _collection_of(str(stream_id)), str(stream_id), version, timeout
        )
    else:
        raise ClientError("consistency needs position, or streamId and version")
    if not reached:
        raise ClientError(
            "read models did not reach the requested consistency in time; retry later",
            CONSISTENCY_TIMEOUT,
        )


def _collection_of(stream_id: str) -> str:
    for prefix, collection in COLLECTION_BY_PREFIX.items():
        if stream_id.startswith(prefix):
            return collection
    raise ClientError("consistency.streamId must be an account or transfer id")
