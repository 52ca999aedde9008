"""Step 5 of docs/extending.md: GraphQL types, a query and mutations for savings goals.

In the bank these pieces go into ``schema/`` (types, ``queries.py``,
``mutations.py``) and the view into ``schema.context.Context``; here they form
a small schema of their own so the example runs on its own. Money crosses the
API as decimal strings (``DecimalString``), errors come back as typed union
members (``schema.errors``), never as exceptions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import strawberry
from strawberry.schema.config import StrawberryConfig

from application.service import ApplicationService, CommandContext
from docs.examples.savings.goal import GOAL, CreateGoal, GoalState, SaveTowardsGoal
from docs.examples.savings.projection import GoalRecord, GoalsView
from domain.aggregate import DomainError
from domain.money import format_amount, parse_amount
from schema.errors import ErrorType, error_from_domain
from schema.scalars import SCALAR_MAP, DecimalString


@dataclass
class GoalContext:
    """What the resolvers use; in the bank, add ``goals`` to ``schema.context.Context``."""

    service: ApplicationService
    goals: GoalsView
    user: str = "dev"


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
    def from_record(cls, r: GoalRecord) -> Goal:
        return cls(id=strawberry.ID(r.id), owner=r.owner, name=r.name, status=r.status,
                   target=DecimalString(format_amount(r.target)),
                   saved=DecimalString(format_amount(r.saved)), version=r.version)  # fmt: skip

    @classmethod
    def from_state(cls, s: GoalState, version: int) -> Goal:
        record = GoalRecord(s.goal_id, s.owner, s.name, s.target, s.saved, s.status, version)
        return cls.from_record(record)


@strawberry.type
class GoalPayload:
    goal: Goal = strawberry.field(description="The goal right after the command.")
    version: int


GoalResult = Annotated[GoalPayload | ErrorType, strawberry.union("GoalResult")]


@strawberry.input
class CreateGoalInput:
    name: str
    target: DecimalString


@strawberry.input
class SaveTowardsGoalInput:
    goal_id: strawberry.ID
    amount: DecimalString


async def _send(ctx: GoalContext, command: CreateGoal | SaveTowardsGoal) -> GoalResult:
    """Handle the command; rejections become typed errors; the payload is rebuilt from events."""
    try:
        outcome = await ctx.service.handle(command, CommandContext(actor=ctx.user))
    except DomainError as error:
        return error_from_domain(error)
    # The read model may lag a moment behind; the write side's state never does.
    loaded = await ctx.service.load(GOAL, outcome.stream_id, at_version=outcome.version)
    return GoalPayload(goal=Goal.from_state(loaded.state, outcome.version), version=outcome.version)


async def create_goal(info: strawberry.Info[GoalContext], input: CreateGoalInput) -> GoalResult:
    try:
        target = parse_amount(input.target, "target")
    except DomainError as error:
        return error_from_domain(error)
    goal_id = f"goal-{uuid.uuid4().hex}"  # ids are made here, never inside the aggregate
    return await _send(info.context, CreateGoal(goal_id, info.context.user, input.name, target))


async def save_towards_goal(
    info: strawberry.Info[GoalContext], input: SaveTowardsGoalInput
) -> GoalResult:
    try:
        amount = parse_amount(input.amount)
    except DomainError as error:
        return error_from_domain(error)
    return await _send(info.context, SaveTowardsGoal(str(input.goal_id), amount))


async def goal(info: strawberry.Info[GoalContext], id: strawberry.ID) -> Goal | None:
    record = await info.context.goals.get(str(id))
    return Goal.from_record(record) if record is not None else None


@strawberry.type
class GoalQuery:
    goal: Goal | None = strawberry.field(
        resolver=goal, description="A goal as the `goals` read model has it."
    )


@strawberry.type
class GoalMutation:
    create_goal: GoalResult = strawberry.mutation(resolver=create_goal)
    save_towards_goal: GoalResult = strawberry.mutation(resolver=save_towards_goal)


def build_goal_schema() -> strawberry.Schema:
    return strawberry.Schema(query=GoalQuery, mutation=GoalMutation,
                             config=StrawberryConfig(scalar_map=SCALAR_MAP))  # fmt: skip
