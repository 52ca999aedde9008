"""The contract every aggregate in ``domain/`` fulfils, and the descriptor a feature exports.

An aggregate is written as a *decider*: three pure functions over plain values.
The Application Service is generic over this protocol. A feature's domain
module (``domain/accounts.py``) implements it and exports one ``Domain``: its
deciders, events, upcasters and rejections. Wiring derives the command routing
(``deciders``), the event registry (``domain.codec.build_registry``) and the
known rejections (``rejection_types``) from the list of ``Domain`` values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
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


class InvalidInput(DomainError):
    """A command value is malformed (``field`` names it: "amount", "owner"...)."""

    code = "invalid_input"

    def __init__(self, field: str, message: str | None = None, **details: Any) -> None:
        super().__init__(message or f"invalid {field}", field=field, **details)
        self.field = field


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


AnyDecider = Decider[Any, Any, Any]


@dataclasses.dataclass(frozen=True)
class Upcaster:
    """Turns stored data of ``event`` (a type name) at ``from_version`` into ``from_version + 1``.

    ``step`` is pure; stored events are never rewritten, so it runs on every read
    of old data.
    """

    event: str
    from_version: int
    step: Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Domain:
    """Everything a feature's domain module contributes.

    - ``deciders``: command class -> the decider that handles it.
    - ``events``: every event class, registered under its class name.
    - ``schema_versions``: event classes whose current schema version is above 1.
    - ``wide_fields``: unbounded int fields per event class (``domain.codec``).
    - ``upcasters``: the steps from each older stored shape to the next.
    - ``errors``: the ``DomainError`` subclasses its deciders raise, so a stored
      rejection is rebuilt as its own class. Codes must be unique across domains;
      a class may appear in several domains.
    """

    deciders: Mapping[type, AnyDecider]
    events: tuple[type, ...]
    schema_versions: Mapping[type, int] = dataclasses.field(default_factory=dict)
    wide_fields: Mapping[type, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    upcasters: tuple[Upcaster, ...] = ()
    errors: tuple[type[DomainError], ...] = ()


def deciders(domains: Iterable[Domain]) -> dict[type, AnyDecider]:
    """Command class -> decider over all ``domains``; a command claimed twice is an error."""
    routes: dict[type, AnyDecider] = {}
    for domain in domains:
        for command, decider in domain.deciders.items():
            if routes.get(command, decider) is not decider:
                raise ValueError(f"command {command.__name__} has two deciders")
            routes[command] = decider
    return routes


def rejection_types(domains: Iterable[Domain]) -> tuple[type[DomainError], ...]:
    """Every rejection class the ``domains`` raise, each once, ``InvalidInput`` first."""
    found: dict[type[DomainError], None] = {InvalidInput: None}
    for domain in domains:
        found.update(dict.fromkeys(domain.errors))
    return tuple(found)
