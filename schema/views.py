"""Read-model queries: connections over the projections' read views, with auth.

Users see only their own accounts and the transfers from or to them; admins
see everything. ``ensure_consistency`` implements the ``consistency``
argument (read-your-writes) through ``projections.waiting``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from schema.context import Context
from schema.cursors import decode_cursor, encode_cursor
from schema.errors import ClientError, forbidden_query
from schema.reads import first_of
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


@strawberry.type
class AccountEdge:
    cursor: str
    node: Account


@strawberry.type
class AccountConnection:
    edges: list[AccountEdge]
    page_info: PageInfo


@strawberry.type
class TransferEdge:
    cursor: str
    node: Transfer


@strawberry.type
class TransferConnection:
    edges: list[TransferEdge]
    page_info: PageInfo


def _page_info(cursors: list[str], has_next: bool) -> PageInfo:
    return PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None)


async def read_account(ctx: Context, account_id: str) -> Account | None:
    doc: Mapping[str, Any] | None = await ctx.accounts.get(account_id)
    if doc is None or not ctx.user.owns(str(doc["owner"])):
        return None
    return Account.from_doc(doc)


async def accounts_page(
    ctx: Context, first: int | None, after: str | None, owner: str | None
) -> AccountConnection:
    size = first_of(ctx, first)
    if not ctx.user.is_admin:
        if owner is not None and not ctx.user.owns(owner):
            raise forbidden_query("users may list only their own accounts")
        owner = ctx.user.name
    start = decode_cursor(after, 1)
    docs, has_next = await ctx.accounts.page(owner=owner, after=start, limit=size)
    edges = [AccountEdge(cursor=encode_cursor([d["_id"]]), node=Account.from_doc(d)) for d in docs]
    return AccountConnection(edges=edges, page_info=_page_info([e.cursor for e in edges], has_next))


async def statement_page(
    ctx: Context, account_id: str, first: int | None, after: str | None
) -> StatementConnection:
    size = first_of(ctx, first)
    start = decode_cursor(after, 1)
    docs, has_next = await ctx.statements.page(account_id, after=start, limit=size)
    edges = [
        StatementEdge(cursor=encode_cursor([d["version"]]), node=StatementEntry.from_doc(d))
        for d in docs
    ]
    return StatementConnection(
        edges=edges, page_info=_page_info([e.cursor for e in edges], has_next)
    )


async def _may_see_transfer(ctx: Context, doc: Mapping[str, Any]) -> bool:
    if ctx.user.is_admin:
        return True
    for side in ("from_account_id", "to_account_id"):
        account = await ctx.accounts.get(str(doc[side]))
        if account is not None and ctx.user.owns(str(account["owner"])):
            return True
    return False


async def read_transfer(ctx: Context, transfer_id: str) -> Transfer | None:
    doc: Mapping[str, Any] | None = await ctx.transfers.get(transfer_id)
    if doc is None or not await _may_see_transfer(ctx, doc):
        return None
    return Transfer.from_doc(doc)


async def transfers_page(
    ctx: Context,
    first: int | None,
    after: str | None,
    status: TransferStatus | None,
    account_id: str | None,
) -> TransferConnection:
    size = first_of(ctx, first)
    if not ctx.user.is_admin:
        if account_id is None:
            raise ClientError("users must give accountId (one of their accounts)")
        if await read_account(ctx, account_id) is None:
            raise forbidden_query("users may list only transfers of their own accounts")
    start = decode_cursor(after, 1)
    docs, has_next = await ctx.transfers.page(
        status=status.value if status is not None else None,
        account_id=account_id,
        after=start,
        limit=size,
    )
    edges = [
        TransferEdge(cursor=encode_cursor([d["_id"]]), node=Transfer.from_doc(d)) for d in docs
    ]
    return TransferConnection(
        edges=edges, page_info=_page_info([e.cursor for e in edges], has_next)
    )


async def ledger_totals(ctx: Context) -> list[Ledger]:
    if not ctx.user.authenticated:
        raise forbidden_query("the ledger needs a signed-in user")
    docs = await ctx.ledger.all()
    return [Ledger.from_doc(doc) for doc in docs]


async def ensure_consistency(ctx: Context, consistency: Any) -> None:
    """Wait (bounded) until read models reflect the given position or stream version."""
    if consistency is None:
        return
    timeout = ctx.limits.consistency_timeout_seconds
    position, stream_id, version = (
        consistency.position,
        consistency.stream_id,
        consistency.version,
    )
    if position is None and (stream_id is None or version is None):
        raise ClientError("consistency needs position, or streamId and version")
    if position is not None:
        reached = await ctx.waiting.wait_for_position(position, timeout=timeout)
    else:
        reached = await ctx.waiting.wait_for_version(str(stream_id), version, timeout=timeout)
    if not reached:
        raise ClientError(
            "read models did not reach the requested consistency in time; retry later",
            "CONSISTENCY_TIMEOUT",
        )
