"""The savings-goal example of docs/extending.md works, layer by layer, as the guide says.

Domain (given/when/then on the pure decider), the Application Service with
the in-memory stores, the projector under the real consumer runtime, and the
GraphQL schema executing a mutation and a query.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import strawberry

from application.service import ApplicationService, CommandContext
from docs.examples.savings.api import GoalContext, build_goal_schema
from docs.examples.savings.goal import (
    GOAL,
    GOAL_DECIDERS,
    GOAL_ERRORS,
    CreateGoal,
    GoalAbandoned,
    GoalCreated,
    GoalIsClosed,
    GoalReached,
    MoneySavedTowardsGoal,
    SaveTowardsGoal,
    register_goal_events,
)
from docs.examples.savings.projection import GoalsProjector, GoalsView
from domain.codec import EventRegistry
from domain.errors import ERROR_TYPES, InvalidInput
from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings
from projections.documents_memory import InMemoryDocumentStore
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _decide(given: list[Any], command: Any) -> list[Any]:
    state = GOAL.initial_state()
    for event in given:
        state = GOAL.evolve(state, event)
    return list(GOAL.decide(state, command))


def test_domain_given_when_then() -> None:
    created = GoalCreated("goal-1", "ana", "bike", 10_000)
    assert _decide([], CreateGoal("goal-1", "ana", "bike", 10_000)) == [created]
    assert _decide([created], SaveTowardsGoal("goal-1", 2_500)) == [
        MoneySavedTowardsGoal("goal-1", 2_500, 2_500)
    ]
    assert _decide([created], SaveTowardsGoal("goal-1", 10_000)) == [
        MoneySavedTowardsGoal("goal-1", 10_000, 10_000),
        GoalReached("goal-1"),
    ]
    with pytest.raises(GoalIsClosed):
        _decide([created, GoalAbandoned("goal-1")], SaveTowardsGoal("goal-1", 1))
    with pytest.raises(InvalidInput):
        _decide([], CreateGoal("goal-2", "ana", "bike", 0))


def _service(store: InMemoryEventStore, registry: EventRegistry) -> ApplicationService:
    return ApplicationService(
        store,
        InMemorySnapshotStore(),
        InMemoryCommandLog(store),
        registry,
        GOAL_DECIDERS,
        rejection_types=(*ERROR_TYPES.values(), *GOAL_ERRORS),
    )


async def _projected(view: GoalsView, goal_id: str, version: int) -> None:
    for _ in range(500):  # bounded: 10 s at most
        record = await view.get(goal_id)
        if record is not None and record.version == version:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{goal_id} never reached version {version} in the read model")


CREATE = """mutation { createGoal(input: {name: "bike", target: "100.00"}) {
  ... on GoalPayload { version goal { id saved status } } } }"""
SAVE = """mutation Save($id: ID!) { saveTowardsGoal(input: {goalId: $id, amount: "100.00"}) {
  __typename ... on GoalPayload { goal { saved status } } ... on CommandRejected { code } } }"""
READ = "query Read($id: ID!) { goal(id: $id) { name target saved status version } }"


@dataclass
class GoalApp:
    """The example's schema over a service and a running projector (in-memory stores)."""

    schema: strawberry.Schema
    context: GoalContext

    async def run(self, document: str, **variables: Any) -> dict[str, Any]:
        result = await self.schema.execute(
            document, variable_values=variables or None, context_value=self.context
        )
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data


@pytest.fixture
async def goal_app() -> AsyncIterator[GoalApp]:
    registry = register_goal_events(EventRegistry())
    store, documents = InMemoryEventStore(), InMemoryDocumentStore()
    service = _service(store, registry)
    consumer = Consumer(
        GoalsProjector(documents, registry=registry),
        store,
        CheckpointStore(documents),
        InMemoryLeases(),
        settings=ConsumerSettings(poll_interval=0.02),
    )
    consumer.start()
    try:
        context = GoalContext(service=service, goals=GoalsView(documents), user="ana")
        yield GoalApp(build_goal_schema(), context)
    finally:
        await consumer.stop()
        await service.close()


async def test_service_projection_and_graphql(goal_app: GoalApp) -> None:
    goal: dict[str, Any] = (await goal_app.run(CREATE))["createGoal"]["goal"]
    assert (goal["saved"], goal["status"]) == ("0.00", "SAVING")

    assert await goal_app.run(SAVE, id=goal["id"]) == {
        "saveTowardsGoal": {
            "__typename": "GoalPayload",
            "goal": {"saved": "100.00", "status": "REACHED"},
        }
    }
    assert await goal_app.run(SAVE, id=goal["id"]) == {
        "saveTowardsGoal": {"__typename": "CommandRejected", "code": "goal_closed"}
    }

    await _projected(goal_app.context.goals, goal["id"], version=3)
    assert await goal_app.run(READ, id=goal["id"]) == {
        "goal": {
            "name": "bike",
            "target": "100.00",
            "saved": "100.00",
            "status": "REACHED",
            "version": 3,
        }
    }


async def test_projector_replay_changes_nothing() -> None:
    registry = register_goal_events(EventRegistry())
    store, documents = InMemoryEventStore(), InMemoryDocumentStore()
    service = _service(store, registry)
    await service.handle(CreateGoal("goal-7", "ana", "trip", 500), CommandContext())
    await service.handle(SaveTowardsGoal("goal-7", 200), CommandContext())
    projector = GoalsProjector(documents, registry=registry)
    await projector.prepare()
    events = await store.read_all(0)
    await projector.handle_batch(events)
    once = await GoalsView(documents).get("goal-7")
    await projector.handle_batch(events)  # at-least-once delivery: a replay
    assert await GoalsView(documents).get("goal-7") == once
    assert once is not None
    assert (once.saved, once.version) == (200, 2)
    await service.close()


async def test_rejections_repeat_for_a_repeated_command_id() -> None:
    registry = register_goal_events(EventRegistry())
    service = _service(InMemoryEventStore(), registry)
    await service.handle(CreateGoal("goal-9", "ana", "trip", 500), CommandContext())
    context = CommandContext(command_id="cmd-save-0")
    await service.handle(SaveTowardsGoal("goal-9", 500), CommandContext())
    for _ in range(2):
        with pytest.raises(GoalIsClosed):
            await service.handle(SaveTowardsGoal("goal-9", 1), context)
    await service.close()


def test_the_guide_names_only_code_that_exists() -> None:
    """Every ``docs/examples/...`` path and dotted module the guide mentions is real."""
    text = GUIDE.read_text()
    root = GUIDE.parents[1]
    for path in set(re.findall(r"docs/examples/[\w/]+\.py", text)):
        assert (root / path).exists(), path
    for module in set(
        re.findall(
            r"`((?:domain|store|application|projections|schema|runtime)"
            r"(?:\.\w+)+)`",
            text,
        )
    ):
        parts = module.split(".")
        candidates = [
            root.joinpath(*parts[:n]).with_suffix(".py") for n in range(1, len(parts) + 1)
        ]
        assert any(c.exists() for c in candidates), module
