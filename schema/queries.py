"""The generic queries: ``node``, the audit log (``events``) and projection status.

Feature queries (``account``, ``transfers``, ``ledger``...) are the features'
``Query`` mixins (``schema.accounts``...); ``schema.app.build_schema`` composes
them with ``CoreQuery``. Every query that reads a read model accepts
``consistency`` (``schema.reads.Consistency``): a stream version or a global
position the caller just produced (a mutation payload's ``version``/``position``).
The query then waits, bounded by ``Limits.consistency_timeout_seconds``, until
the read models reflect it, and fails with a ``CONSISTENCY_TIMEOUT`` error if
they do not in time.
"""

from __future__ import annotations

import strawberry
from strawberry import relay

from schema.audit_types import ProjectionStatus
from schema.context import Context
from schema.errors import UNAVAILABLE, ClientError
from schema.reads import (
    Consistency,
    EventConnection,
    ensure_consistency,
    event_log,
    read_node,
    require_admin,
)


async def node(
    info: strawberry.Info[Context], id: strawberry.ID, consistency: Consistency | None = None
) -> relay.Node | None:
    await ensure_consistency(info.context, consistency)
    found = await read_node(info.context, str(id))
    return found if isinstance(found, relay.Node) else None


async def events(
    info: strawberry.Info[Context],
    after: int = 0,
    first: int | None = None,
    stream_id: strawberry.ID | None = None,
    types: list[str] | None = None,
) -> EventConnection:
    stream = str(stream_id) if stream_id is not None else None
    return await event_log(info.context, after, first, stream, types)


async def projections(info: strawberry.Info[Context]) -> list[ProjectionStatus]:
    ctx = info.context
    require_admin(ctx, "projection status")
    if ctx.status is None:
        raise ClientError("projection status is not available here", UNAVAILABLE)
    report = await ctx.status.report()
    return [ProjectionStatus.from_status(status) for status in report]


@strawberry.type
class CoreQuery:
    node: relay.Node | None = strawberry.field(
        resolver=node,
        description="An account or a transfer by its id, as `account(id:)` and `transfer(id:)` "
        "read it: null when unknown, malformed or not yours.",
    )
    events: EventConnection = strawberry.field(
        resolver=events,
        description="The audit log in global position order, after position `after` (admin).",
    )
    projections: list[ProjectionStatus] = strawberry.field(
        resolver=projections, description="Status and lag of every projection (admin)."
    )
