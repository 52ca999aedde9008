"""What the rest of the service may assume of storage.

Every backend (``InMemoryEventStore``, ``MongoEventStore`` on PyMongo's async
client or on Motor) implements these protocols with the same observable
behaviour; ``tests/store/test_contract.py`` runs one suite against all of them.
The Application Service and the consumers depend on these protocols only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from store.notifier import HeadNotifier


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended. ``data`` holds JSON-like plain values."""

    event_id: str
    type: str
    data: Mapping[str, Any]
    schema_version: int = 1


@dataclass(frozen=True)
class CommitMetadata:
    """Who and what caused a commit; stored once per commit.

    ``fingerprint`` identifies the command sent under ``command_id`` (its type,
    target stream and canonical fields, ``application.service.fingerprint``): a
    repeat of the id is only answered with this commit if its fingerprint
    matches. None when the commit carries none: then any repeat of the id is.

    ``traceparent`` is the W3C trace context of the request (or event) that
    caused the commit, a 55-character string; None when none was stored.
    """

    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    fingerprint: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class RecordedEvent:
    """One stored event, flattened out of its commit.

    ``version`` is this event's own version in its stream (1-based).
    ``position`` is its global position, ``None`` until the sequencer stamps it.
    ``recorded_at`` is timezone-aware UTC.
    """

    stream_id: str
    stream_type: str
    version: int
    event_id: str
    type: str
    schema_version: int
    data: Mapping[str, Any]
    metadata: CommitMetadata
    recorded_at: datetime
    position: int | None = None


@dataclass(frozen=True)
class AppendResult:
    """The outcome of one successful append: a single commit."""

    stream_id: str
    version: int  # the stream's version after the commit (its last event's version)
    events: tuple[RecordedEvent, ...] = field(default_factory=tuple)


class ConcurrencyError(Exception):
    """The stream was not at ``expected_version`` when the commit was written."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        super().__init__(
            f"stream {stream_id!r} expected at version {expected_version}, "
            f"actually at {actual_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class DuplicateCommandError(Exception):
    """A commit carrying this command id already exists; nothing was written."""

    def __init__(self, command_id: str) -> None:
        super().__init__(f"command {command_id!r} was already applied")
        self.command_id = command_id


class EventStore(Protocol):
    """Append-only event storage with optimistic concurrency and a global order."""

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = CommitMetadata(),
    ) -> AppendResult:
        """Write ``events`` as one atomic commit at ``expected_version + 1``.

        ``expected_version`` is 0 for a new stream. Raises ``ConcurrencyError``
        when the stream is at another version and ``DuplicateCommandError`` when
        ``metadata.command_id`` is already recorded. ``events`` must not be empty.
        """
        ...

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version``, in order.

        Events appear here as soon as ``append`` returns, sequenced or not.
        """
        ...

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist."""
        ...

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        """The stream's version as of ``moment`` (last commit recorded at or before it)."""
        ...

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        """Sequenced events with ``position > after_position``, in position order.

        At most ``limit`` events, optionally filtered by stream and event types.
        A reader that has seen position p has seen every position below p.
        """
        ...

    async def head_position(self) -> int:
        """The highest stamped global position; 0 when none."""
        ...

    async def position_of(self, stream_id: str, version: int) -> int | None:
        """The global position of the stream's event ``version``; None while unstamped.

        For the last event of a commit this process just appended, a backend
        whose sequencer runs here waits a bounded time for that sequencer's
        pass to stamp it instead of reading the store; otherwise it reads once.
        """
        ...

    async def sequence(self) -> int:
        """Stamp global positions on commits appended so far, where not yet done.

        Returns the number of commits stamped by this call. Backends that assign
        positions while appending return 0.
        """
        ...

    async def find_command(self, command_id: str) -> AppendResult | None:
        """The commit written by ``command_id``, if any."""
        ...

    # -- global order in this process --------------------------------------------------

    @property
    def needs_sequencer(self) -> bool:
        """Whether positions are stamped only by ``sequence()`` passes (``store.sequencer``).

        False for a backend that stamps positions while appending: it needs no
        sequencer, and its ``sequence()`` has nothing to do.
        """
        ...

    @property
    def notifier(self) -> HeadNotifier:
        """The highest position known in this process, which readers here may wait on.

        Advanced by every append, ``sequence()`` pass and read here that sees a
        higher position (``store.notifier``).
        """
        ...

    @property
    def backlog_drained(self) -> bool:
        """Whether the last ``sequence()`` pass claimed the whole backlog it read.

        Always true for a backend that needs no sequencer.
        """
        ...

    def add_append_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every successful append in this process."""
        ...

    def add_stamp_listener(self, listener: Callable[[Sequence[RecordedEvent]], None]) -> None:
        """Call ``listener(events)`` with the events each ``sequence()`` pass here made
        visible (contiguous, in position order), before the notifier advances.

        Never called by a backend that stamps positions while appending.
        """
        ...

    async def sequencing_backlog(self, cap: int) -> tuple[int, int | None]:
        """Commits appended but not yet stamped (counted up to ``cap``), and when the
        oldest of them was appended (epoch milliseconds, None when there is none)."""
        ...


class StoreObserver(Protocol):
    """Told by an event store about its work (metrics, traces).

    ``append`` and ``read_stream`` are entered around the store's own call and
    see its exceptions (a ``ConcurrencyError`` is a lost version race);
    ``append`` yields the commit metadata to store, which an observer may extend
    (the trace context). ``sequenced`` reports each ``sequence()`` pass that
    stamped commits: when it started (epoch nanoseconds) and how many it stamped.
    """

    def append(
        self, stream_type: str, events: int, metadata: CommitMetadata
    ) -> AbstractContextManager[CommitMetadata]: ...

    def read_stream(self, stream_id: str, from_version: int) -> AbstractContextManager[None]: ...

    def sequenced(self, started_ns: int, commits: int) -> None: ...


class Unobserved:
    """The ``StoreObserver`` of a store nobody observes: every hook does nothing."""

    def append(
        self, stream_type: str, events: int, metadata: CommitMetadata
    ) -> AbstractContextManager[CommitMetadata]:
        return nullcontext(metadata)

    def read_stream(self, stream_id: str, from_version: int) -> AbstractContextManager[None]:
        return nullcontext()

    def sequenced(self, started_ns: int, commits: int) -> None:
        return None


UNOBSERVED = Unobserved()


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state as of ``version``, in the decider's snapshot shape."""

    stream_id: str
    stream_type: str
    version: int
    schema_version: int
    state: Mapping[str, Any]


class SnapshotStore(Protocol):
    """Derived, disposable copies of aggregate state. Losing them loses nothing."""

    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot``; saving a version that exists again is harmless."""
        ...

    async def latest(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        """The snapshot with the highest version ``<= max_version`` (any, if None)."""
        ...


@dataclass(frozen=True)
class CommandRejection:
    """A command id whose command was rejected by a domain rule.

    ``fingerprint`` identifies the rejected command (see ``CommitMetadata``);
    None when none was stored.
    """

    command_id: str
    stream_id: str
    code: str
    message: str
    details: Mapping[str, Any]
    fingerprint: str | None = None


#: The one recorded outcome of a command id: its commit or its rejection.
CommandRecord = AppendResult | CommandRejection


class CommandLog(Protocol):
    """The one durable record per command id: its commit or its rejection, whichever came first.

    A log is bound to one ``EventStore``: a rejection is kept under the same
    unique command-id key as that store's commits, so for any command id at
    most one of them is ever written. An append carrying an id that has a
    rejection raises ``DuplicateCommandError``, as for a commit, and
    recording a rejection for an id that has a commit returns the commit.
    """

    async def record_rejection(self, rejection: CommandRejection) -> CommandRecord:
        """Store ``rejection`` unless its id has an outcome; return the id's outcome.

        That is ``rejection`` itself, or what another writer recorded first
        under the same id (a rejection, or a commit).
        """
        ...

    async def find_outcome(self, command_id: str) -> CommandRecord | None:
        """The commit or the rejection recorded for ``command_id``, in one lookup."""
        ...


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a named lease, under which epoch, and until when.

    ``epoch`` is the lease's fencing token: it grows by one with every
    acquisition (never with a renewal) and never goes back, also across
    releases. Every write made on behalf of the lease carries it, and the
    resource written refuses epochs older than the newest it has seen.
    ``expires_at_ms`` is on the lease store's clock (the database's), and
    ``live`` says whether that clock had not yet passed it when this was read.
    """

    name: str
    owner: str
    expires_at_ms: int
    epoch: int = 0
    live: bool = True


class Leases(Protocol):
    """Named leases with expiry: at most one live owner per name, cluster-wide.

    Expiry is judged by one clock, the lease store's (``clock_ms``), never by a
    caller's wall clock: a process whose clock is off neither takes a live
    lease early nor keeps a dead one.
    """

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> LeaseHolder | None:
        """Take the lease as a newcomer: a new, higher epoch.

        Succeeds when the lease is free, released, expired, or already
        ``owner``'s; returns the acquisition, or None while another owner holds
        it live.
        """
        ...

    async def renew(self, held: LeaseHolder, ttl_seconds: float) -> LeaseHolder | None:
        """Extend ``held`` if its owner still holds it under the same epoch.

        None when the lease was taken since (by anyone, under a newer epoch):
        the caller has lost it and must stop acting on its behalf.
        """
        ...

    async def release(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (its epoch is kept for the next taker)."""
        ...

    async def holder(self, name: str) -> LeaseHolder | None:
        """The current holder, live or not; None if never taken or released."""
        ...

    async def clock_ms(self) -> int:
        """Now, in epoch milliseconds, on the clock lease expiry is judged by."""
        ...
