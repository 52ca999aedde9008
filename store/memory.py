"""In-memory backends: the same observable behaviour as MongoDB, in one process.

Used by unit tests and the in-memory benchmark. Positions are stamped while
appending (so ``sequence()`` has nothing to do), every append is atomic (no
``await`` between its check and its write) and yields to the loop once before
checking, so concurrent writers really interleave as they would over a network.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from store.notifier import HeadNotifier
from store.protocol import (
    UNOBSERVED,
    AppendResult,
    CommandRecord,
    CommandRejection,
    CommitMetadata,
    ConcurrencyError,
    DuplicateCommandError,
    LeaseHolder,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreObserver,
)
from store.records import (
    NO_METADATA,
    Clock,
    MillisClock,
    check_append,
    epoch_ms,
    flatten,
    to_stored_time,
    utc_now,
)

__all__ = [
    "InMemoryCommandLog",
    "InMemoryEventStore",
    "InMemoryLeases",
    "InMemorySnapshotStore",
]


class InMemoryEventStore:
    """``EventStore`` in a Python process; ``clock`` fixes ``recorded_at`` in tests.

    Positions are stamped while appending: it needs no sequencer.
    """

    needs_sequencer = False
    backlog_drained = True

    def __init__(self, *, clock: Clock = utc_now, observer: StoreObserver = UNOBSERVED) -> None:
        self._clock = clock
        self._observer = observer
        # A commit is kept as the ``AppendResult`` that reported it: immutable,
        # so ``append`` and ``find_command`` hand out the stored value itself.
        self._streams: dict[str, list[AppendResult]] = {}
        self._log: list[RecordedEvent] = []  # index i holds position i + 1
        self._stream_positions: dict[str, list[int]] = {}
        # Each command id's one outcome: its commit, or the rejection that
        # ``InMemoryCommandLog`` recorded under the same key.
        self._commands: dict[str, CommandRecord] = {}
        self.notifier = HeadNotifier(watch_bound=0.0)  # every position is stamped here
        self._listeners: list[Callable[[], None]] = []

    def add_append_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every successful append (uniform with Mongo)."""
        self._listeners.append(listener)

    def add_stamp_listener(self, listener: Callable[[Sequence[RecordedEvent]], None]) -> None:
        """Never called: no ``sequence()`` pass makes events visible here."""

    async def sequencing_backlog(self, cap: int) -> tuple[int, int | None]:
        return 0, None

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        with self._observer.append(stream_type, len(events), metadata) as observed:
            return await self._append(stream_id, stream_type, expected_version, events, observed)

    async def _append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> AppendResult:
        check_append(expected_version, events)
        await asyncio.sleep(0)  # a real store's round trip lets others run here
        command_id = metadata.command_id
        if command_id is not None and command_id in self._commands:
            raise DuplicateCommandError(command_id)
        commits = self._streams.setdefault(stream_id, [])
        actual = commits[-1].version if commits else 0
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        commit = self._write(stream_id, stream_type, expected_version, events, metadata)
        commits.append(commit)
        if command_id is not None:
            self._commands[command_id] = commit
        self.notifier.advance(len(self._log))
        for listener in self._listeners:
            listener()
        return commit

    def _write(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> AppendResult:
        """The commit after ``expected_version``, its events added to the global log."""
        first_position = len(self._log) + 1
        recorded = flatten(
            stream_id=stream_id,
            stream_type=stream_type,
            first_version=expected_version + 1,
            events=events,
            metadata=metadata,
            recorded_at=to_stored_time(self._clock()),
            first_position=first_position,
        )
        self._log.extend(recorded)
        positions = range(first_position, first_position + len(recorded))
        self._stream_positions.setdefault(stream_id, []).extend(positions)
        return AppendResult(stream_id, recorded[-1].version, recorded)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        with self._observer.read_stream(stream_id, from_version):
            return self._read_stream(stream_id, from_version, to_version)

    def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None
    ) -> list[RecordedEvent]:
        # Commits are in version order: bisect to the first one that reaches
        # ``from_version`` so a load after a snapshot costs only the tail.
        commits = self._streams.get(stream_id, [])
        start = bisect.bisect_left(commits, from_version, key=lambda c: c.version)
        last = to_version if to_version is not None else commits[-1].version if commits else 0
        selected: list[RecordedEvent] = []
        for commit in commits[start:]:
            if commit.events[0].version > last:
                break
            selected.extend(e for e in commit.events if from_version <= e.version <= last)
        return selected

    async def stream_version(self, stream_id: str) -> int:
        commits = self._streams.get(stream_id)
        return commits[-1].version if commits else 0

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        moment = to_stored_time(moment)
        commits = self._streams.get(stream_id, ())
        versions = [c.version for c in commits if c.events[0].recorded_at <= moment]
        return max(versions, default=0)

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        after_position = max(after_position, 0)
        if limit <= 0:
            return []
        wanted = set(types) if types is not None else None
        if stream_id is None:
            candidates: Sequence[RecordedEvent] = self._log[after_position:]
        else:
            positions = self._stream_positions.get(stream_id, [])
            start = bisect.bisect_right(positions, after_position)
            candidates = [self._log[p - 1] for p in positions[start:]]
        found: list[RecordedEvent] = []
        for event in candidates:
            if wanted is None or event.type in wanted:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    async def head_position(self) -> int:
        return len(self._log)

    async def position_of(self, stream_id: str, version: int) -> int | None:
        positions = self._stream_positions.get(stream_id, [])
        return positions[version - 1] if 1 <= version <= len(positions) else None

    async def sequence(self) -> int:
        return 0

    async def find_command(self, command_id: str) -> AppendResult | None:
        found = self._commands.get(command_id)
        return found if isinstance(found, AppendResult) else None


class InMemorySnapshotStore:
    """``SnapshotStore`` in a dict; saving an existing version replaces it."""

    def __init__(self) -> None:
        self._snapshots: dict[str, dict[int, Snapshot]] = {}

    async def save(self, snapshot: Snapshot) -> None:
        self._snapshots.setdefault(snapshot.stream_id, {})[snapshot.version] = snapshot

    async def latest(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        by_version = self._snapshots.get(stream_id, {})
        usable = [v for v in by_version if max_version is None or v <= max_version]
        return by_version[max(usable)] if usable else None


class InMemoryCommandLog:
    """``CommandLog`` of ``store``: rejections share its command-id map with its commits.

    Whichever of a commit and a rejection reaches the map first is the id's
    outcome. Like an append, recording yields to the loop once before it acts.
    """

    def __init__(self, store: InMemoryEventStore) -> None:
        self._outcomes = store._commands

    async def record_rejection(self, rejection: CommandRejection) -> CommandRecord:
        await asyncio.sleep(0)
        return self._outcomes.setdefault(rejection.command_id, rejection)

    async def find_outcome(self, command_id: str) -> CommandRecord | None:
        return self._outcomes.get(command_id)


class InMemoryLeases:
    """``Leases`` in a dict; ``clock_ms`` (epoch milliseconds) is injectable for tests.

    The in-memory "database" is this process, so its clock judges expiry.
    """

    def __init__(self, *, clock_ms: MillisClock = epoch_ms) -> None:
        self._clock_ms = clock_ms
        self._holders: dict[str, LeaseHolder] = {}
        self._epochs: dict[str, int] = {}  # kept across releases: epochs never go back

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> LeaseHolder | None:
        now = self._clock_ms()
        current = self._holders.get(name)
        if current is not None and current.owner != owner and current.expires_at_ms >= now:
            return None
        epoch = self._epochs.get(name, 0) + 1
        self._epochs[name] = epoch
        held = LeaseHolder(name, owner, now + int(ttl_seconds * 1000), epoch)
        self._holders[name] = held
        return held

    async def renew(self, held: LeaseHolder, ttl_seconds: float) -> LeaseHolder | None:
        current = self._holders.get(held.name)
        if current is None or (current.owner, current.epoch) != (held.owner, held.epoch):
            return None
        renewed = LeaseHolder(
            held.name, held.owner, self._clock_ms() + int(ttl_seconds * 1000), held.epoch
        )
        self._holders[held.name] = renewed
        return renewed

    async def release(self, name: str, owner: str) -> None:
        current = self._holders.get(name)
        if current is not None and current.owner == owner:
            del self._holders[name]

    async def holder(self, name: str) -> LeaseHolder | None:
        current = self._holders.get(name)
        if current is None:
            return None
        live = current.expires_at_ms >= self._clock_ms()
        return current if live else dataclasses.replace(current, live=False)

    async def clock_ms(self) -> int:
        return self._clock_ms()
