"""The savings example of docs/extending.md is a real feature: one module per layer plus one line.

Its decider given/when/then; its projector replayed; and the real ``server.py``
with ``FEATURES`` naming it serving its mutations, its query (with
read-your-writes) and its live subscription, next to the bank's API.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from application.service import ApplicationService, CommandContext
from docs.examples.savings.domain import (
    DOMAIN,
    GOAL,
    AbandonGoal,
    CreateGoal,
    GoalAbandoned,
    GoalAlreadyExists,
    GoalCreated,
    GoalIsClosed,
    GoalNotFound,
    GoalReached,
    MoneySavedTowardsGoal,
    SaveTowardsGoal,
)
from docs.examples.savings.projections import GoalsProjector, GoalsView
from domain.aggregate import InvalidInput, deciders, rejection_types
from domain.codec import build_registry
from projections.documents import InMemoryDocumentStore
from runtime.features import load_features
from runtime.settings import Settings
from store.memory import InMemoryCommandLog, InMemoryEventStore, InMemorySnapshotStore
from tests.domain.gwt import given
from tests.runtime.processes import ServerProcess, running_server

SAVINGS = "docs.examples.savings.schema"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"

# -- domain: given / when / then ----------------------------------------------------


def test_a_goal_is_created_once() -> None:
    created = GoalCreated("goal-1", "ana", "bike", 10_000)
    given(GOAL).when(CreateGoal("goal-1", "ana", " bike ", 10_000)).then(created)
    given(GOAL, created).when(CreateGoal("goal-1", "ana", "bike", 1)).then_error(
        GoalAlreadyExists, goal_id="goal-1"
    )
    given(GOAL).when(CreateGoal("goal-2", "ana", "bike", 0)).then_error(InvalidInput)
    given(GOAL).when(CreateGoal("goal-2", "ana", " ", 100)).then_error(InvalidInput)


def test_saving_the_last_amount_reaches_the_goal_in_one_commit() -> None:
    created = GoalCreated("goal-1", "ana", "bike", 10_000)
    given(GOAL, created).when(SaveTowardsGoal("goal-1", 2_500)).then(
        MoneySavedTowardsGoal("goal-1", 2_500, 2_500)
    )
    state = (
        given(GOAL, created)
        .when(SaveTowardsGoal("goal-1", 10_000))
        .then(MoneySavedTowardsGoal("goal-1", 10_000, 10_000), GoalReached("goal-1"))
    )
    assert (state.saved, state.status) == (10_000, "REACHED")


def test_a_closed_or_unknown_goal_accepts_nothing() -> None:
    created = GoalCreated("goal-1", "ana", "bike", 10_000)
    abandoned = given(GOAL, created, GoalAbandoned("goal-1"))
    abandoned.when(SaveTowardsGoal("goal-1", 1)).then_error(GoalIsClosed, status="ABANDONED")
    abandoned.when(AbandonGoal("goal-1")).then_error(GoalIsClosed)
    given(GOAL).when(SaveTowardsGoal("goal-9", 1)).then_error(GoalNotFound, goal_id="goal-9")


# -- read side: replay changes nothing -------------------------------------------------


async def test_projector_replay_changes_nothing() -> None:
    registry, store = build_registry([DOMAIN]), InMemoryEventStore()
    documents = InMemoryDocumentStore()
    service = ApplicationService(
        store,
        InMemorySnapshotStore(),
        InMemoryCommandLog(store),
        registry,
        deciders([DOMAIN]),
        rejection_types=rejection_types([DOMAIN]),
    )
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


# -- the feature list ---------------------------------------------------------------------


def test_features_adds_the_savings_feature() -> None:
    features = load_features(f"{Settings.model_fields['features'].default},{SAVINGS}")
    assert features.names == ("accounts", "transfers", "ledger", "savings")
    assert "goals" in features.read_sides.read_models
    assert CreateGoal in features.deciders


# -- through the real server ----------------------------------------------------------

CREATE = """mutation($key: String) { createGoal(input: {name: "bike", target: "100.00",
  commandId: $key}) { __typename ... on GoalPayload { version goal { id saved status } } } }"""
SAVE = """mutation($id: ID!, $amount: Decimal!) {
  saveTowardsGoal(input: {goalId: $id, amount: $amount}) {
    __typename ... on GoalPayload { version goal { saved status } }
    ... on CommandRejected { code } ... on InvalidInput { field } } }"""
READ = """query($id: ID!, $v: Int!) {
  goal(id: $id, consistency: {streamId: $id, version: $v}) { name target saved status version } }"""
CHANGED = "subscription($id: ID!) { goalChanged(id: $id) { saved status version } }"
OPEN = """mutation { openAccount(input: {owner: "dev", currency: "EUR"}) { __typename } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``python server.py`` serving the bank and the savings feature (in-memory stores)."""
    features = f"{Settings.model_fields['features'].default},{SAVINGS}"
    env = {"STORE": "memory", "FEATURES": features, "LOG_FORMAT": "text"}
    with running_server(tmp_path_factory.mktemp("savings"), env) as running:
        yield running


@asynccontextmanager
async def http(server: ServerProcess) -> AsyncIterator[Any]:
    async with Client(transport=HTTPXAsyncTransport(url=server.http, timeout=30)) as session:
        yield session


@asynccontextmanager
async def ws(server: ServerProcess) -> AsyncIterator[Any]:
    transport = WebsocketsTransport(url=server.ws, subprotocols=["graphql-transport-ws"])
    async with Client(transport=transport) as session:
        yield session


async def run(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = await session.execute(GraphQLRequest(query, variable_values=variables))
    return result


async def test_the_server_serves_the_savings_mutations_and_query(server: ServerProcess) -> None:
    async with http(server) as session:
        created = (await run(session, CREATE, key="bike-1"))["createGoal"]
        assert created["__typename"] == "GoalPayload", created
        goal_id = created["goal"]["id"]
        assert (created["version"], created["goal"]["saved"]) == (1, "0.00")
        repeated = (await run(session, CREATE, key="bike-1"))["createGoal"]
        assert repeated["goal"]["id"] == goal_id  # the same command id: the same goal

        saved = (await run(session, SAVE, id=goal_id, amount="100.00"))["saveTowardsGoal"]
        assert saved == {
            "__typename": "GoalPayload",
            "version": 3,
            "goal": {"saved": "100.00", "status": "REACHED"},
        }
        refused = (await run(session, SAVE, id=goal_id, amount="1"))["saveTowardsGoal"]
        assert refused == {"__typename": "CommandRejected", "code": "goal_closed"}
        invalid = (await run(session, SAVE, id=goal_id, amount="-1"))["saveTowardsGoal"]
        assert invalid == {"__typename": "InvalidInput", "field": "amount"}

        goal = (await run(session, READ, id=goal_id, v=3))["goal"]
        assert goal == {
            "name": "bike",
            "target": "100.00",
            "saved": "100.00",
            "status": "REACHED",
            "version": 3,
        }
        # the bank's API is served beside it
        assert (await run(session, OPEN))["openAccount"]["__typename"] == "AccountPayload"


async def test_the_server_serves_the_live_goal_subscription(server: ServerProcess) -> None:
    async with http(server) as session, ws(server) as live:
        goal_id = (await run(session, CREATE))["createGoal"]["goal"]["id"]
        changes = live.subscribe(GraphQLRequest(CHANGED, variable_values={"id": goal_id}))
        first = (await asyncio.wait_for(anext(changes), 20))["goalChanged"]
        assert (first["saved"], first["status"]) == ("0.00", "SAVING")
        await run(session, SAVE, id=goal_id, amount="40.00")
        await run(session, SAVE, id=goal_id, amount="60.00")
        seen = [first]
        while seen[-1]["status"] != "REACHED":  # latest-only: states may be skipped
            seen.append((await asyncio.wait_for(anext(changes), 20))["goalChanged"])
        await changes.aclose()
        assert seen[-1] == {"saved": "100.00", "status": "REACHED", "version": 4}
        assert [change["version"] for change in seen] == sorted({c["version"] for c in seen})


# -- the guide ------------------------------------------------------------------------------


def test_the_guide_names_only_code_that_exists() -> None:
    """Every ``docs/examples/...`` path and dotted module the guide mentions is real."""
    text = GUIDE.read_text()
    root = GUIDE.parents[1]
    for path in set(re.findall(r"docs/examples/[\w/]+\.py", text)):
        assert (root / path).exists(), path
    for module in set(
        re.findall(r"`((?:domain|store|application|projections|schema|runtime)(?:\.\w+)+)`", text)
    ):
        parts = module.split(".")
        candidates = [
            root.joinpath(*parts[:n]).with_suffix(".py") for n in range(1, len(parts) + 1)
        ]
        assert any(c.exists() for c in candidates), module
