"""Queries: read models, time travel, the audit log, history, projection status.

Every query that reads a read model accepts ``consistency``: a stream version
or a global position the caller just produced (a mutation payload's
``version``/``position``). The query then waits, bounded by
``Limits.consistency_timeout_seconds``, until the read models reflect it, and
fails with a ``CONSISTENCY_TIMEOUT`` error if they do not in time.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from schema.context import Context
from schema.errors import UNAVAILABLE, ClientError
from schema.reads import (
    AccountHistoryEntry,
    EventConnection,
    account_as_of,
    account_history,
    event_log,
    require_admin,
)
from schema.types import Account, Ledger, ProjectionStatus, Transfer, TransferStatus
from schema.views import (
    AccountConnection,
    TransferConnection,
    Window,
    accounts_page,
    ensure_consistency,
    ledger_totals,
    read_account,
    read_node,
    read_transfer,
    transfers_page,
)


@strawberry.input(
    description="Wait until read models reflect a write: give `position`, or `streamId` "
    "and `version` (from a mutation payload)."
)
class Consistency:
    position: int | None = None
    stream_id: strawberry.ID | None = None
    version: int | None = None


async def account(
    info: strawberry.Info[Context],
    id: strawberry.ID,
    at_version: int | None = None,
    as_of: datetime | None = None,
    consistency: Consistency | None = None,
) -> Account | None:
    ctx = info.context
    if at_version is not None or as_of is not None:
        return await account_as_of(ctx, str(id), at_version, as_of)
    await ensure_consistency(ctx, consistency)
    return await read_account(ctx, str(id))


async def accounts(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    owner: str | None = None,
    consistency: Consistency | None = None,
    last: int | None = None,
    before: str | None = None,
) -> AccountConnection:
    window = Window.of(info.context, first, after, last, before)
    await ensure_consistency(info.context, consistency)
    return await accounts_page(info.context, window, owner)


async def transfer(
    info: strawberry.Info[Context], id: strawberry.ID, consistency: Consistency | None = None
) -> Transfer | None:
    await ensure_consistency(info.context, consistency)
    return await read_transfer(info.context, str(id))


async def transfers(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    status: TransferStatus | None = None,
    account_id: strawberry.ID | None = None,
    consistency: Consistency | None = None,
    last: int | None = None,
    before: str | None = None,
) -> TransferConnection:
    window = Window.of(info.context, first, after, last, before)
    await ensure_consistency(info.context, consistency)
    account_filter = str(account_id) if account_id is not None else None
    return await transfers_page(info.context, window, status, account_filter)


async def node(
    info: strawberry.Info[Context], id: strawberry.ID, consistency: Consistency | None = None
) -> relay.Node | None:
    await ensure_consistency(info.context, consistency)
    return await read_node(info.context, str(id))


async def ledger(
    info: strawberry.Info[Context], consistency: Consistency | None = None
) -> list[Ledger]:
    await ensure_consistency(info.context, consistency)
    return await ledger_totals(info.context)


async def events(
    info: strawberry.Info[Context],
    after: int = 0,
    first: int | None = None,
    stream_id: strawberry.ID | None = None,
    types: list[str] | None = None,
) -> EventConnection:
    stream = str(stream_id) if stream_id is not None else None
    return await event_log(info.context, after, first, stream, types)


async def account_history_field(
    info: strawberry.Info[Context],
    id: strawberry.ID,
    from_version: int = 1,
    first: int | None = None,
) -> list[AccountHistoryEntry]:
    return await account_history(info.context, str(id), from_version, first)


async def projections(info: strawberry.Info[Context]) -> list[ProjectionStatus]:
    ctx = info.context
    require_admin(ctx, "projection status")
    if ctx.status is None:
        raise ClientError("projection status is not available here", UNAVAILABLE)
    report = await ctx.status.report()
    return [ProjectionStatus.from_status(status) for status in report]


@strawberry.type
class Query:
    account: Account | None = strawberry.field(
        resolver=account,
        description="One account: the read model, or rebuilt from its events as of "
        "`atVersion` or `asOf`. Null when it does not exist or is not yours.",
    )
    accounts: AccountConnection = strawberry.field(
        resolver=accounts,
        description="Accounts by id (cursor connection: `first`/`after` forwards, "
        "`last`/`before` backwards, one direction per request). Users see only their own.",
    )
    transfer: Transfer | None = strawberry.field(
        resolver=transfer, description="One transfer; null when unknown or not yours."
    )
    transfers: TransferConnection = strawberry.field(
        resolver=transfers,
        description="Transfers, newest first (cursor connection: `first`/`after` forwards, "
        "`last`/`before` backwards, one direction per request), by status and/or an account "
        "on either side.",
    )
    node: relay.Node | None = strawberry.field(
        resolver=node,
        description="An account or a transfer by its id, as `account(id:)` and `transfer(id:)` "
        "read it: null when unknown, malformed or not yours.",
    )
    ledger: list[Ledger] = strawberry.field(
        resolver=ledger, description="Totals per currency over all accounts."
    )
    events: EventConnection = strawberry.field(
        resolver=events,
        description="The audit log in global position order, after position `after` (admin).",
    )
    account_history: list[AccountHistoryEntry] = strawberry.field(
        resolver=account_history_field,
        description="Each event of one account with the account's state right after it.",
    )
    projections: list[ProjectionStatus] = strawberry.field(
        resolver=projections, description="Status and lag of every projection (admin)."
    )
