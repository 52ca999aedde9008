"""The savings feature's GraphQL API: the Goal type, ``goal(id:)``, two mutations, ``goalChanged``.

``FEATURE`` registers the whole feature (domain, read side, API); naming this
module in ``FEATURES`` makes the service serve it. The patterns are the bank's
(``schema.accounts``): money crosses the API as decimal strings, a mutation's
rejections come back as typed members of its result union, ids are made here
(derived from the ``commandId`` when one is given), and users see and change
only their own goals.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from application.repository import StreamTypeMismatch
from application.service import CommandOutcome
from docs.examples.savings.domain import (
    DOMAIN,
    GOAL,
    CreateGoal,
    GoalNotFound,
    GoalState,
    SaveTowardsGoal,
)
from docs.examples.savings.projections import NAME, READ_SIDE, GoalRecord, GoalsView
from projections.live import topic_for
from schema import errors as e
from schema.app import Feature
from schema.commands import (
    amount_of,
    check_command_id,
    command_context,
    new_id_for,
    send,
)
from schema.context import Context
from schema.errors import forbidden_query
from schema.reads import Consistency, ensure_consistency, plausible_id
from schema.scalars import DecimalString, money
from schema.subscriptions import documents


@strawberry.type(description="A savings goal: money put aside until the target is met.")
class Goal:
    id: strawberry.ID
    owner: str
    name: str
    target: DecimalString
    saved: DecimalString
    status: str
    version: int

    @classmethod
    def from_record(cls, record: GoalRecord) -> Goal:
        return cls(
            id=strawberry.ID(record.id),
            owner=record.owner,
            name=record.name,
            target=money(record.target),
            saved=money(record.saved),
            status=record.status,
            version=record.version,
        )

    @classmethod
    def from_state(cls, state: GoalState, version: int) -> Goal:
        return cls(
            id=strawberry.ID(state.goal_id),
            owner=state.owner,
            name=state.name,
            target=money(state.target),
            saved=money(state.saved),
            status=state.status,
            version=version,
        )


# -- goal(id:) ------------------------------------------------------------------------


async def read_goal(ctx: Context, goal_id: str) -> Goal | None:
    """The goal from the read model; None when unknown or not the caller's."""
    if not plausible_id(goal_id):
        return None
    record = await ctx.view(GoalsView).get(goal_id)
    if record is None or not ctx.user.owns(record.owner):
        return None
    return Goal.from_record(record)


async def goal(
    info: strawberry.Info[Context], id: strawberry.ID, consistency: Consistency | None = None
) -> Goal | None:
    await ensure_consistency(info.context, consistency)
    return await read_goal(info.context, str(id))


@strawberry.type
class GoalsQuery:
    goal: Goal | None = strawberry.field(
        resolver=goal, description="A goal as the `goals` read model has it; null if not yours."
    )


# -- mutations ------------------------------------------------------------------------


@strawberry.type(description="A command on a goal was applied.")
class GoalPayload:
    goal: Goal = strawberry.field(description="The goal right after the command.")
    version: int


GoalResult = Annotated[GoalPayload | e.ErrorType, strawberry.union("GoalResult")]


@strawberry.input
class CreateGoalInput:
    name: str
    target: DecimalString
    command_id: str | None = strawberry.field(
        default=None, description="Idempotency key: a repeat returns the first outcome."
    )


@strawberry.input
class SaveTowardsGoalInput:
    goal_id: strawberry.ID
    amount: DecimalString
    command_id: str | None = None


async def _state(ctx: Context, goal_id: str, version: int | None = None) -> GoalState:
    """The goal's state from its events (never a lagging read model)."""
    try:
        loaded = await ctx.service.load(GOAL, goal_id, at_version=version)
    except StreamTypeMismatch:  # the id names another kind of stream: no such goal
        return GoalState()
    state: GoalState = loaded.state
    return state


async def _payload(ctx: Context, outcome: CommandOutcome | e.ErrorType) -> GoalResult:
    """The goal right after the command, rebuilt from its events."""
    if not isinstance(outcome, CommandOutcome):
        return outcome
    state = await _state(ctx, outcome.stream_id, outcome.version)
    return GoalPayload(goal=Goal.from_state(state, outcome.version), version=outcome.version)


async def create_goal(info: strawberry.Info[Context], input: CreateGoalInput) -> GoalResult:
    ctx = info.context
    if not ctx.user.authenticated:
        return e.forbidden("sign in to create goals")
    invalid = check_command_id(input.command_id)
    if invalid is not None:
        return invalid
    target = amount_of(input.target, "target")
    if isinstance(target, e.InvalidInput):
        return target
    context = command_context(ctx, input.command_id)
    command = CreateGoal(new_id_for("goal", context), ctx.user.name, input.name, target)
    return await _payload(ctx, await send(ctx, command, context))


async def save_towards_goal(
    info: strawberry.Info[Context], input: SaveTowardsGoalInput
) -> GoalResult:
    ctx = info.context
    invalid = check_command_id(input.command_id)
    if invalid is not None:
        return invalid
    amount = amount_of(input.amount)
    if isinstance(amount, e.InvalidInput):
        return amount
    goal_id = str(input.goal_id)
    state = await _state(ctx, goal_id)
    if not state.exists:
        return e.error_from_domain(GoalNotFound(goal_id))
    if not ctx.user.owns(state.owner):
        return e.forbidden(f"goal {goal_id} belongs to another user")
    context = command_context(ctx, input.command_id)
    return await _payload(ctx, await send(ctx, SaveTowardsGoal(goal_id, amount), context))


@strawberry.type
class GoalsMutation:
    create_goal: GoalResult = strawberry.mutation(
        resolver=create_goal, description="Start saving towards a target amount."
    )
    save_towards_goal: GoalResult = strawberry.mutation(
        resolver=save_towards_goal,
        description="Put money towards a goal; the goal is reached once the target is met.",
    )


# -- goalChanged(id:) -----------------------------------------------------------------


def goal_changed(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[Goal, None]:
    ctx = info.context

    async def admit() -> None:
        state = await _state(ctx, str(id))
        if not state.exists or not ctx.user.owns(state.owner):
            raise forbidden_query("you may only subscribe to your own goals")

    return documents(ctx, topic_for("goal", str(id)), Goal.from_record, admit=admit)


@strawberry.type
class GoalsSubscription:
    goal_changed: AsyncGenerator[Goal, None] = strawberry.subscription(
        resolver=goal_changed, description="The goal now, then after each change."
    )


FEATURE = Feature(
    name="savings",
    domain=DOMAIN,
    read_side=READ_SIDE,
    query=GoalsQuery,
    mutation=GoalsMutation,
    subscription=GoalsSubscription,
    stream_documents={"goal-": NAME},
)
