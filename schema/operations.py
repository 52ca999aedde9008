"""Operator mutations (admin only): ``retryProjection`` (``CoreMutation``).

A consumer that stopped on a poison event (state ``stopped_on_error``) never
skips it; after the cause is fixed an admin asks it to try again. The request
is durable, so the process running the consumer resumes it wherever it runs;
the payload shows the status at the moment of the request (the consumer
resumes shortly after).
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema import errors as e
from schema.audit_types import ProjectionStatus
from schema.context import Context


@strawberry.type(description="A retry was requested; `projection` is its status at that moment.")
class RetryProjectionPayload:
    projection: ProjectionStatus


RetryProjectionResult = Annotated[
    RetryProjectionPayload | e.Forbidden | e.InvalidInput,
    strawberry.union("RetryProjectionResult"),
]


async def retry_projection(info: strawberry.Info[Context], name: str) -> RetryProjectionResult:
    ctx = info.context
    if not ctx.user.is_admin:
        return e.forbidden("retrying a projection is only available to admins")
    if ctx.retrier is None or ctx.status is None:
        raise e.ClientError("projection retries are not available here", e.UNAVAILABLE)
    if not ctx.retrier.knows(name):
        return e.invalid_input("name", f"unknown projection {name!r}")
    await ctx.retrier.retry(name)
    report = await ctx.status.report()
    status = next(row for row in report if row.name == name)
    return RetryProjectionPayload(projection=ProjectionStatus.from_status(status))


@strawberry.type
class CoreMutation:
    retry_projection: RetryProjectionResult = strawberry.mutation(
        resolver=retry_projection,
        description="Admin: ask a projection stopped on a failing event (`stopped_on_error`) "
        "to try that event again, after the cause was fixed. Unknown names are InvalidInput.",
    )
