"""Test wrappers around real stores: counting calls, or failing on purpose.

They delegate to a real backend (never stand in for our logic); they only
observe, or inject the faults a test needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from store.notifier import HeadNotifier
from store.protocol import (
    AppendResult,
    CommandLog,
    CommandRecord,
    CommandRejection,
    CommitMetadata,
    EventStore,
    NewEvent,
    RecordedEvent,
    Snapshot,
    SnapshotStore,
)

NO_METADATA = CommitMetadata()


class ForwardingEventStore:
    """Delegates every ``EventStore`` member to ``inner``, unchanged.

    The base for the doubles that observe one or two calls without restating
    the whole protocol: a subclass overrides only what it observes.
    """

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        return await self.inner.append(stream_id, stream_type, expected_version, events, metadata)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        return await self.inner.read_stream(stream_id, from_version, to_version)

    async def stream_version(self, stream_id: str) -> int:
        return await self.inner.stream_version(stream_id)

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        return await self.inner.version_at(stream_id, moment)

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        return await self.inner.read_all(after_position, limit, stream_id=stream_id, types=types)

    async def head_position(self) -> int:
        return await self.inner.head_position()

    async def position_of(self, stream_id: str, version: int) -> int | None:
        return await self.inner.position_of(stream_id, version)

    async def sequence(self) -> int:
        return await self.inner.sequence()

    async def find_command(self, command_id: str) -> AppendResult | None:
        return await self.inner.find_command(command_id)

    @property
    def needs_sequencer(self) -> bool:
        return self.inner.needs_sequencer

    @property
    def notifier(self) -> HeadNotifier:
        return self.inner.notifier

    @property
    def backlog_drained(self) -> bool:
        return self.inner.backlog_drained

    def add_append_listener(self, listener: Callable[[], None]) -> None:
        self.inner.add_append_listener(listener)

    def add_stamp_listener(self, listener: Callable[[Sequence[RecordedEvent]], None]) -> None:
        self.inner.add_stamp_listener(listener)

    async def sequencing_backlog(self, cap: int) -> tuple[int, int | None]:
        return await self.inner.sequencing_backlog(cap)


class CountingStore(ForwardingEventStore):
    """An ``EventStore`` that counts appends and stream reads of the store it wraps."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.before_read: Callable[[], Awaitable[None]] | None = None
        self.before_append: Callable[[], Awaitable[None]] | None = None
        self.appends = 0
        self.conflicts = 0
        self.stream_reads = 0
        self.events_read = 0

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        hook, self.before_append = self.before_append, None
        if hook is not None:  # runs once: the writer pauses between its decision and its write
            await hook()
        self.appends += 1
        try:
            return await self.inner.append(
                stream_id, stream_type, expected_version, events, metadata
            )
        except Exception:
            self.conflicts += 1
            raise

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        hook, self.before_read = self.before_read, None
        if hook is not None:  # runs once: lets a test slip a write in before this read
            await hook()
        events = await self.inner.read_stream(stream_id, from_version, to_version)
        self.stream_reads += 1
        self.events_read += len(events)
        return events


class CountingSnapshots:
    """A ``SnapshotStore`` that records what was saved and how often it was asked."""

    def __init__(self, inner: SnapshotStore) -> None:
        self.inner = inner
        self.saved: list[Snapshot] = []
        self.lookups = 0

    async def save(self, snapshot: Snapshot) -> None:
        await self.inner.save(snapshot)
        self.saved.append(snapshot)

    async def latest(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        self.lookups += 1
        return await self.inner.latest(stream_id, max_version)


class BrokenSnapshots:
    """A ``SnapshotStore`` whose every call fails, like an unreachable collection."""

    def __init__(self) -> None:
        self.attempts = 0

    async def save(self, snapshot: Snapshot) -> None:
        self.attempts += 1
        raise ConnectionError("snapshot store unreachable")

    async def latest(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        raise ConnectionError("snapshot store unreachable")


class RecordingCommandLog:
    """A ``CommandLog`` that keeps a list of every rejection it was asked to record."""

    def __init__(self, inner: CommandLog) -> None:
        self.inner = inner
        self.recorded: list[CommandRejection] = []
        self.before_record: Callable[[], Awaitable[None]] | None = None

    async def record_rejection(self, rejection: CommandRejection) -> CommandRecord:
        hook, self.before_record = self.before_record, None
        if hook is not None:  # runs once: lets a test slip a write in before this record
            await hook()
        self.recorded.append(rejection)
        return await self.inner.record_rejection(rejection)

    async def find_outcome(self, command_id: str) -> CommandRecord | None:
        return await self.inner.find_outcome(command_id)


async def stored_rejection(log: CommandLog, command_id: str) -> CommandRejection | None:
    """The rejection recorded for ``command_id``; None if it has none (or a commit)."""
    record = await log.find_outcome(command_id)
    return record if isinstance(record, CommandRejection) else None
