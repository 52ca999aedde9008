"""A tiny given/when/then helper for deciders: ``given(D, *events).when(cmd).then(*events)``.

Its read-side counterpart, for projectors and process managers, is ``tests.projections.gwt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from domain.aggregate import Decider, DomainError


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What ``decide`` did: the events it returned, or the rejection it raised."""

    decider: Decider[Any, Any, Any]
    state: Any
    events: Sequence[Any] | None
    error: DomainError | None

    def then(self, *expected: Any) -> Any:
        """Assert the exact events (none for a no-op); return the state after them."""
        if self.error is not None:
            pytest.fail(f"expected events {expected}, got rejection {self.error!r}")
        assert list(self.events or ()) == list(expected)
        state = self.state
        for event in expected:
            state = self.decider.evolve(state, event)
        return state

    def then_error(self, error_type: type[DomainError], **details: Any) -> DomainError:
        """Assert a rejection of ``error_type`` whose details include ``details``."""
        if self.error is None:
            pytest.fail(f"expected {error_type.__name__}, got events {self.events}")
        assert type(self.error) is error_type, repr(self.error)
        for key, value in details.items():
            assert self.error.details.get(key) == value, (key, self.error.details)
        return self.error


@dataclasses.dataclass(frozen=True)
class Given:
    decider: Decider[Any, Any, Any]
    state: Any

    def when(self, command: Any) -> Outcome:
        snapshot = self.decider.to_snapshot(self.state)
        try:
            events = self.decider.decide(self.state, command)
        except DomainError as error:
            outcome = Outcome(self.decider, self.state, None, error)
        else:
            outcome = Outcome(self.decider, self.state, list(events), None)
        assert self.decider.to_snapshot(self.state) == snapshot, "decide changed the state"
        return outcome


def given(decider: Decider[Any, Any, Any], *events: Any) -> Given:
    """The decider's state after folding ``events`` into its initial state."""
    state = decider.initial_state()
    for event in events:
        state = decider.evolve(state, event)
    return Given(decider, state)
