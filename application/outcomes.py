"""What the Application Service returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from store.protocol import RecordedEvent


@dataclass(frozen=True)
class CommandOutcome:
    """The result of a handled command.

    ``version`` is the stream's version after the command's commit (its last
    event's version); when the decision produced no events it is the version
    the decision was made at and ``events`` is empty. ``duplicate`` is true
    when the command id had already been applied and these are that commit's
    events (nothing new was written).
    """

    stream_id: str
    version: int
    events: tuple[RecordedEvent, ...] = ()
    duplicate: bool = False


@dataclass(frozen=True)
class Loaded:
    """An aggregate's state as of ``version`` (0: before its first event)."""

    state: Any
    version: int


class HistoryEntry(NamedTuple):
    """One stored event together with the aggregate's state right after it.

    A named pair, so ``for event, state in await service.history(...)`` works.
    """

    event: RecordedEvent
    state: Any
