"""The backends the store contract suite runs against, behind one small facade."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store.protocol import CommandLog, EventStore, Leases, SnapshotStore


@dataclass
class FakeClock:
    """A settable clock: datetimes for ``recorded_at``, epoch ms for leases."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def millis(self) -> int:
        return int(self.now.timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Backend:
    """One backend's stores, sharing ``clock``."""

    name: str
    store: EventStore
    snapshots: SnapshotStore
    commands: CommandLog
    leases: Leases
    clock: FakeClock
    extra: dict[str, Any] = field(default_factory=dict)
