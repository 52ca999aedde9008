"""The contract every aggregate in ``domain/`` fulfils.

An aggregate is written as a *decider*: three pure functions over plain values.
The Application Service is generic over this protocol, so a team adds an
aggregate by writing one module that implements it (see ``domain/account.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

State = TypeVar("State")
Command = TypeVar("Command", contravariant=True)
Event = TypeVar("Event")


class DomainError(Exception):
    """A command was rejected by a business rule. Nothing was changed.

    Subclasses are typed rejections (``InsufficientFunds``...). ``code`` is a
    stable machine name; ``details`` holds plain values that explain the
    rejection, so a rejection can be stored and replayed to a repeated command.
    """

    code: str = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class Decider(Protocol[State, Command, Event]):
    """An aggregate as pure functions: no I/O, no clock, no random ids.

    - ``stream_type`` names the aggregate kind stored on every commit.
    - ``stream_id(command)`` is the id of the stream the command targets.
    - ``initial_state()`` is the state before any event (``exists`` false).
    - ``evolve(state, event)`` folds one past event into the state.
    - ``decide(state, command)`` returns the new events (possibly none) or
      raises a ``DomainError``; it never mutates ``state``.
    - ``snapshot_version`` identifies the shape produced by ``to_snapshot``;
      ``from_snapshot`` must accept exactly that shape.
    """

    stream_type: str
    snapshot_version: int

    def stream_id(self, command: Command) -> str: ...

    def initial_state(self) -> State: ...

    def evolve(self, state: State, event: Event) -> State: ...

    def decide(self, state: State, command: Command) -> Sequence[Event]: ...

    def to_snapshot(self, state: State) -> Mapping[str, Any]: ...

    def from_snapshot(self, data: Mapping[str, Any]) -> State: ...
