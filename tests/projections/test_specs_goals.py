"""Specs of the savings example's ``goals`` read model (docs/extending.md)."""

from __future__ import annotations

from typing import Any

from docs.examples.savings.domain import DOMAIN as GOALS
from docs.examples.savings.domain import (
    GoalAbandoned,
    GoalCreated,
    GoalReached,
    MoneySavedTowardsGoal,
)
from docs.examples.savings.projections import GoalsProjector
from domain.codec import build_registry
from projections.consumer import EventHandler
from tests.projections.gwt import Deps, at, given, newest_first

G = "goal-1"
REGISTRY = build_registry([GOALS])


def goals(deps: Deps) -> EventHandler:
    return GoalsProjector(deps.documents, hub=deps.hub, registry=deps.registry)


def goal(version: int, **changes: Any) -> dict[str, Any]:
    return {
        "owner": "ann",
        "name": "bike",
        "target": 500,
        "saved": 0,
        "status": "SAVING",
        "version": version,
        "position": version,
        "updated_at": at(version),
        **changes,
    }


CREATED = GoalCreated(G, "ann", "bike", 500)


async def test_a_created_goal_has_saved_nothing() -> None:
    projected = await given(CREATED, registry=REGISTRY).project(goals)
    projected.then_document("goals", G, goal(1))
    projected.then_published((f"goal:{G}", {"id": G, "version": 1, "position": 1}))


async def test_savings_add_up_until_the_goal_is_reached() -> None:
    history = (CREATED, MoneySavedTowardsGoal(G, 200, 200), MoneySavedTowardsGoal(G, 300, 500),
               GoalReached(G))  # fmt: skip
    projected = await given(*history, registry=REGISTRY).project(goals)
    projected.then_document("goals", G, goal(4, saved=500, status="REACHED"))


async def test_an_abandoned_goal_keeps_its_savings() -> None:
    history = (CREATED, MoneySavedTowardsGoal(G, 200, 200), GoalAbandoned(G))
    projected = await given(*history, registry=REGISTRY).project(goals)
    projected.then_document("goals", G, goal(3, saved=200, status="ABANDONED"))


async def test_replay_redelivery_and_disorder_keep_the_newest_goal() -> None:
    history = (CREATED, MoneySavedTowardsGoal(G, 200, 200), GoalAbandoned(G))
    projected = await given(*history, registry=REGISTRY).then_idempotent(goals)
    projected.then_document("goals", G, goal(3, saved=200, status="ABANDONED"))
    backwards = await given(*history, registry=REGISTRY).project(goals, deliver=newest_first)
    assert backwards.documents("goals")[G]["status"] == "ABANDONED"
    assert backwards.documents("goals")[G]["version"] == 3
