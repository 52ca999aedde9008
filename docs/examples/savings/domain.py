"""The savings feature's domain layer: the SavingsGoal aggregate, pure, as a decider.

A goal belongs to an owner, has a target amount, collects savings and is
reached when the savings meet the target. Invariants: the target and every
saving are positive amounts (int minor units); a reached or abandoned goal
accepts nothing; a goal id is used once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from domain.aggregate import Domain, DomainError, InvalidInput
from domain.money import check_amount

# -- commands: imperative, frozen, plain values (ids arrive on the command) --------


@dataclasses.dataclass(frozen=True)
class CreateGoal:
    goal_id: str
    owner: str
    name: str
    target: int  # minor units


@dataclasses.dataclass(frozen=True)
class SaveTowardsGoal:
    goal_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class AbandonGoal:
    goal_id: str


GoalCommand = CreateGoal | SaveTowardsGoal | AbandonGoal

# -- events: past tense, frozen, plain values --------------------------------------


@dataclasses.dataclass(frozen=True)
class GoalCreated:
    goal_id: str
    owner: str
    name: str
    target: int


@dataclasses.dataclass(frozen=True)
class MoneySavedTowardsGoal:
    goal_id: str
    amount: int
    saved: int  # the total saved after this event, like the bank's `balance`


@dataclasses.dataclass(frozen=True)
class GoalReached:
    goal_id: str


@dataclasses.dataclass(frozen=True)
class GoalAbandoned:
    goal_id: str


GoalEvent = GoalCreated | MoneySavedTowardsGoal | GoalReached | GoalAbandoned
GOAL_EVENTS = (GoalCreated, MoneySavedTowardsGoal, GoalReached, GoalAbandoned)

# -- typed rejections: a stable `code`, details as plain keyword values ------------


class GoalNotFound(DomainError):
    code = "goal_not_found"

    def __init__(self, goal_id: str, message: str | None = None) -> None:
        super().__init__(message or f"goal {goal_id} not found", goal_id=goal_id)


class GoalAlreadyExists(DomainError):
    code = "goal_already_exists"

    def __init__(self, goal_id: str, message: str | None = None) -> None:
        super().__init__(message or f"goal {goal_id} already exists", goal_id=goal_id)


class GoalIsClosed(DomainError):
    code = "goal_closed"

    def __init__(self, goal_id: str, status: str, message: str | None = None) -> None:
        super().__init__(message or f"goal {goal_id} is {status.lower()}", goal_id=goal_id,
                         status=status)  # fmt: skip


# -- state and the decider ---------------------------------------------------------

GoalStatus = Literal["SAVING", "REACHED", "ABANDONED"]


@dataclasses.dataclass(frozen=True)
class GoalState:
    exists: bool = False
    goal_id: str = ""
    owner: str = ""
    name: str = ""
    target: int = 0
    saved: int = 0
    status: GoalStatus = "SAVING"


def _open_goal(state: GoalState, goal_id: str) -> None:
    if not state.exists:
        raise GoalNotFound(goal_id)
    if state.status != "SAVING":
        raise GoalIsClosed(goal_id, state.status)


def _create(state: GoalState, cmd: CreateGoal) -> list[GoalEvent]:
    if not cmd.name.strip():
        raise InvalidInput("name", "a goal needs a name")
    target = check_amount(cmd.target, "target")
    if state.exists:
        raise GoalAlreadyExists(cmd.goal_id)
    return [GoalCreated(cmd.goal_id, cmd.owner, cmd.name.strip(), target)]


def _save(state: GoalState, cmd: SaveTowardsGoal) -> list[GoalEvent]:
    amount = check_amount(cmd.amount)
    _open_goal(state, cmd.goal_id)
    saved = state.saved + amount
    events: list[GoalEvent] = [MoneySavedTowardsGoal(cmd.goal_id, amount, saved)]
    if saved >= state.target:
        events.append(GoalReached(cmd.goal_id))  # two events, one atomic commit
    return events


def _abandon(state: GoalState, cmd: AbandonGoal) -> list[GoalEvent]:
    _open_goal(state, cmd.goal_id)
    return [GoalAbandoned(cmd.goal_id)]


_DECIDE: dict[type, Callable[[GoalState, Any], list[GoalEvent]]] = {
    CreateGoal: _create,
    SaveTowardsGoal: _save,
    AbandonGoal: _abandon,
}

_EVOLVE: dict[type, Callable[[GoalState, Any], GoalState]] = {
    GoalCreated: lambda s, e: GoalState(True, e.goal_id, e.owner, e.name, e.target),
    MoneySavedTowardsGoal: lambda s, e: dataclasses.replace(s, saved=e.saved),
    GoalReached: lambda s, e: dataclasses.replace(s, status="REACHED"),
    GoalAbandoned: lambda s, e: dataclasses.replace(s, status="ABANDONED"),
}


class GoalDecider:
    """The SavingsGoal aggregate (stream type "goal"; the stream id is the goal id)."""

    stream_type: str = "goal"
    snapshot_version: int = 1

    def stream_id(self, command: GoalCommand) -> str:
        return command.goal_id

    def initial_state(self) -> GoalState:
        return GoalState()

    def evolve(self, state: GoalState, event: GoalEvent) -> GoalState:
        return _EVOLVE[type(event)](state, event)

    def decide(self, state: GoalState, command: GoalCommand) -> Sequence[GoalEvent]:
        return _DECIDE[type(command)](state, command)

    def to_snapshot(self, state: GoalState) -> Mapping[str, Any]:
        return dataclasses.asdict(state)

    def from_snapshot(self, data: Mapping[str, Any]) -> GoalState:
        return GoalState(**{f.name: data[f.name] for f in dataclasses.fields(GoalState)})


GOAL = GoalDecider()

# -- the feature's domain, registered once ------------------------------------------

DOMAIN = Domain(
    deciders=dict.fromkeys((CreateGoal, SaveTowardsGoal, AbandonGoal), GOAL),
    events=GOAL_EVENTS,
    errors=(GoalNotFound, GoalAlreadyExists, GoalIsClosed),
)
