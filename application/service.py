"""The Application Service: the one way commands reach the event store.

``handle(command, context)``:

1. dedupe (one lookup): a command id with a recorded commit returns that
   commit's outcome (``duplicate=True``); one with a recorded rejection raises
   the same typed ``DomainError`` again; either way only if the command's
   fingerprint matches the recorded one, else ``IdempotencyKeyReused``;
2. load: the cached state, or the latest usable snapshot plus newer events;
3. decide: the aggregate's pure ``decide``;
4. append at the loaded version with the commit metadata, every event with a
   fresh event id;
5. on ``ConcurrencyError``: catch up and decide again (jittered exponential
   backoff, for at most ``retry_seconds`` after the first conflict and
   ``max_attempts`` attempts); a client's ``expected_version`` is never
   retried: a mismatch raises ``ConcurrencyConflict`` with the actual version.

Steps 2 to 5 run for one command per stream at a time in this process
(``StreamLocks``): commands to a hot stream queue up instead of
racing each other, so a conflict means another process wrote the stream, and
a command without ``expected_version`` is refused only when other processes
keep winning for ``retry_seconds``.

Rejections of commands with an id are recorded in the ``CommandLog``, under
the same unique key as commits: whichever of a commit and a rejection of one
command id is written first is its only outcome, and every copy of the
command, racing or later, gets that answer (``CommandDeduplicator``). A
``ConcurrencyConflict`` or ``IdempotencyKeyReused`` is not recorded: nothing
happened, and the id keeps its first outcome. A decision without events
records nothing either.

Every command is reported to the service's ``CommandObserver`` (metrics, log
context and traces live outside this package and plug in there). The state a
command is decided on comes from ``application.repository``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, Protocol

from application.ids import new_event_id
from application.repository import AnyDecider, HistoryEntry, Loaded, Repository, StreamTypeMismatch
from domain.aggregate import DomainError
from domain.codec import EventRegistry
from store.protocol import (
    AppendResult,
    CommandLog,
    CommandRecord,
    CommandRejection,
    CommitMetadata,
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    NewEvent,
    RecordedEvent,
    SnapshotStore,
)

# -- who sends a command ------------------------------------------------------------
# Who sends a command and under which conditions.


TRACEPARENT_LENGTH = 55


"""The length of a W3C ``traceparent`` value (version, trace id, parent id, flags)."""


_TRACEPARENT = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a well-formed W3C ``traceparent``, else None (never an error).

    Lower-case hex only, version ``ff`` and all-zero ids refused, as the W3C
    Trace Context recommendation says; the length is checked before the pattern.
    """
    if value is None or len(value) != TRACEPARENT_LENGTH or not _TRACEPARENT.match(value):
        return None
    return value


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a well-formed ``traceparent``; None otherwise."""
    valid = valid_traceparent(traceparent)
    return None if valid is None else valid[3:35]


@dataclass(frozen=True)
class CommandContext:
    """What travels with a command besides its own fields.

    - ``command_id``: makes the command idempotent. A repeated id returns the
      first outcome (the same events, or the same rejection) and never a second
      effect. ``None`` means "no deduplication".
    - ``correlation_id`` / ``causation_id`` / ``actor``: stored as the commit's
      metadata, unchanged.
    - ``expected_version``: the stream version the client last saw. A mismatch
      raises ``ConcurrencyConflict`` and is never retried automatically.
    - ``traceparent``: the W3C trace context the command continues (the
      request's, or the triggering event's for a process manager's command),
      stored in the commit metadata so that consumers in any process continue
      the trace. Only well-formed values (``valid_traceparent``) belong here.
    """

    command_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    expected_version: int | None = None
    traceparent: str | None = None


# -- what the service returns -------------------------------------------------------
# What the Application Service returns.


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


# -- the service's own rejections ---------------------------------------------------
# Rejections raised by the Application Service itself (not by an aggregate).


class ConcurrencyConflict(DomainError):
    """The stream was not at the version the command was decided against.

    Raised when a client-supplied expected version does not match (never
    retried), or when internal retries are exhausted. ``actual_version`` is the
    stream's version as last seen, so the client can reload and decide again.
    Not recorded as a command's final outcome: a repeat may succeed.
    """

    code = "concurrency_conflict"

    def __init__(
        self,
        stream_id: str,
        expected_version: int,
        actual_version: int,
        message: str | None = None,
    ) -> None:
        super().__init__(
            message
            or f"stream {stream_id!r} is at version {actual_version}, not {expected_version}",
            stream_id=stream_id,
            expected_version=expected_version,
            actual_version=actual_version,
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class IdempotencyKeyReused(DomainError):
    """The command id was first used for a different command.

    Raised instead of answering with that other command's outcome: another
    type, stream or field value (amount, account, transfer...) than the first
    use, whether that was committed or rejected. ``original_command_type``
    names the first command's type. Not recorded: the first outcome stays the
    id's outcome.
    """

    code = "idempotency_key_reused"

    def __init__(
        self, command_id: str, original_command_type: str, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"the command id was first used for another command ({original_command_type})",
            command_id=command_id,
            original_command_type=original_command_type,
        )
        self.command_id = command_id
        self.original_command_type = original_command_type


# -- command fingerprints -----------------------------------------------------------
# What a command id was first used for: a fingerprint of the command.
#
# ``fingerprint(command, stream_id)`` is ``"<CommandType>:<digest>"``, the digest
# a SHA-256 (128 bits kept) of the command's type name, its target stream (from
# its decider) and its fields as canonical JSON. It is computed from any command
# dataclass alike, so a command added later needs nothing here. It is stored
# with the command id's outcome (commit metadata or rejection) and compared on
# every repeat: a repeat is answered with the first outcome only if it is the
# same command.
#
# The type's plain name (not its module) is hashed, so moving a class to
# another module does not change its commands' fingerprints; command class
# names are unique within one application (``DECIDERS`` maps them).


_SEPARATOR = ":"


def fingerprint(command: Any, stream_id: str) -> str:
    """The fingerprint of ``command`` sent to ``stream_id``.

    Raises ``TypeError`` for a field value with no canonical form (anything
    but plain values, enums, decimals, and dataclasses, mappings and
    sequences of them).
    """
    kind = type(command).__name__
    canonical = json.dumps(
        [kind, stream_id, _plain(command)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]
    return f"{kind}{_SEPARATOR}{digest}"


def command_type(print_: str) -> str:
    """The command type name a fingerprint was made from."""
    return print_.partition(_SEPARATOR)[0]


def _plain(value: Any) -> Any:
    """``value`` as JSON values; distinct values of different types stay distinct."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return {"enum": type(value).__name__, "value": _plain(value.value)}
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "type": type(value).__name__,
            "fields": {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("command mappings need string keys to be fingerprinted")
        return {"map": {key: _plain(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return {"set": sorted(json.dumps(_plain(item), sort_keys=True) for item in value)}
    raise TypeError(f"cannot fingerprint a {type(value).__name__} field value")


# -- stored rejections --------------------------------------------------------------
# Storing and re-raising rejections, so a repeated command id is rejected the same way.
#
# A rejection is stored as plain values (``code``, ``message``, ``details``) and
# rebuilt into the same ``DomainError`` subclass by its ``code``. The code ->
# class map is explicit: the wiring passes the error classes it knows.


# Attributes of every DomainError that a detail must never overwrite.
_RESERVED = frozenset({"message", "details", "code", "args"})


class RejectionCodes:
    """Maps a rejection ``code`` to its ``DomainError`` subclass.

    The service's own errors (``ConcurrencyConflict``, ``StreamTypeMismatch``,
    ``IdempotencyKeyReused``) are always known.
    """

    def __init__(self, classes: Iterable[type[DomainError]] = ()) -> None:
        by_code: dict[str, type[DomainError]] = {DomainError.code: DomainError}
        all_classes: list[type[DomainError]] = [
            ConcurrencyConflict, StreamTypeMismatch, IdempotencyKeyReused, *classes,
        ]  # fmt: skip
        for cls in all_classes:
            known = by_code.get(cls.code)
            if known is not None and known is not cls and cls.code != DomainError.code:
                raise ValueError(f"rejection code {cls.code!r} used by {known} and {cls}")
            by_code[cls.code] = cls
        self._by_code: Mapping[str, type[DomainError]] = MappingProxyType(by_code)

    @property
    def by_code(self) -> Mapping[str, type[DomainError]]:
        return self._by_code

    def to_record(
        self, command_id: str, stream_id: str, error: DomainError, fingerprint: str | None = None
    ) -> CommandRejection:
        """``error`` as plain values for the ``CommandLog``."""
        return CommandRejection(
            command_id=command_id,
            stream_id=stream_id,
            code=error.code,
            message=error.message,
            details=dict(error.details),
            fingerprint=fingerprint,
        )

    def rebuild(self, rejection: CommandRejection) -> DomainError:
        """The stored rejection as an instance of its original class.

        An unknown code (an error class the wiring did not pass) becomes a
        plain ``DomainError`` carrying the same code, message and details.
        """
        cls = self._by_code.get(rejection.code)
        if cls is None:
            error = DomainError(rejection.message, **rejection.details)
            error.code = rejection.code
            return error
        return _instantiate(cls, rejection.message, dict(rejection.details))


def _instantiate(cls: type[DomainError], message: str, details: dict[str, Any]) -> DomainError:
    """Build ``cls`` from stored values, whatever its constructor's signature.

    The domain's convention (constructor keywords = detail keys plus
    ``message``) is tried first, then the base ``DomainError(message,
    **details)`` form; a class with yet another signature is built bare and
    given its details as attributes.
    """
    error = _construct(cls, message, details)
    if error is None:
        error = cls.__new__(cls)
        DomainError.__init__(error, message, **details)
        for key, value in details.items():
            if key not in _RESERVED:
                setattr(error, key, value)
    # The constructor may phrase its own message; the stored one is what the client saw.
    error.message = message
    error.details = details
    error.args = (message,)
    return error


def _construct(cls: type[DomainError], message: str, details: dict[str, Any]) -> DomainError | None:
    """``cls`` built through its constructor, or None if neither form fits it."""
    try:
        return cls(message=message, **details)
    except TypeError:
        pass
    try:
        return cls(message, **details)
    except TypeError:
        return None


# -- retries and one command per stream ---------------------------------------------
# How long to wait before retrying a command whose append lost a race.
#
# One command at a time per stream, in this process.
#
# Commands to one stream that run concurrently in one process would otherwise
# race each other through optimistic concurrency: all but one lose, catch up and
# retry, and a hot stream can exhaust the retries of a command that asked for no
# version. ``StreamLocks`` queues them instead (FIFO, ``asyncio.Lock``), so
# optimistic retries remain only for races with other processes.
#
# Holds no state for idle streams: an entry lives while its stream has a holder
# or a waiter and is removed by the last one to leave, cancelled waiters
# included. An uncontended acquire does not suspend.


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter.

    Before retry ``n`` (1-based) the wait is uniform in
    ``[0, min(cap, base * 2 ** (n - 1))]`` seconds: racing writers spread
    out instead of colliding again in lock-step.
    """

    base: float = 0.002
    cap: float = 0.1

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(retry - 1, 0))
        return (rng or _RNG).uniform(0.0, ceiling)


_RNG = random.Random()


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # the holder and the waiters


class StreamLocks:
    """A FIFO lock per stream id, created on first use and dropped when idle."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Streams with a holder or a waiter right now."""
        return len(self._entries)

    async def acquire(self, stream_id: str) -> _Entry:
        """Wait for ``stream_id``'s turn; pass the result to ``release``."""
        entry = self._entries.get(stream_id)
        if entry is None:
            entry = self._entries[stream_id] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: leave the queue
            self._leave(stream_id, entry)
            raise
        return entry

    def release(self, stream_id: str, entry: _Entry) -> None:
        entry.lock.release()
        self._leave(stream_id, entry)

    def _leave(self, stream_id: str, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[stream_id]


# -- commits ------------------------------------------------------------------------
# Turning decided domain events into one commit.


def metadata_of(context: CommandContext, fingerprint: str | None = None) -> CommitMetadata:
    """The commit metadata carried by ``context``, with the command's ``fingerprint``."""
    return CommitMetadata(
        command_id=context.command_id,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        actor=context.actor,
        fingerprint=fingerprint,
        traceparent=context.traceparent,
    )


class CommitWriter:
    """Encodes events (current schema versions, a fresh id each) and appends them."""

    def __init__(
        self, store: EventStore, registry: EventRegistry, event_ids: Callable[[], str]
    ) -> None:
        self._store = store
        self._registry = registry
        self._event_ids = event_ids

    async def append(
        self,
        decider: AnyDecider,
        stream_id: str,
        expected_version: int,
        events: Sequence[Any],
        context: CommandContext,
        fingerprint: str | None = None,
    ) -> AppendResult:
        """One commit at ``expected_version + 1``; the store's errors propagate."""
        new_events = [self._new_event(event) for event in events]
        metadata = metadata_of(context, fingerprint)
        return await self._store.append(
            stream_id, decider.stream_type, expected_version, new_events, metadata
        )

    def _new_event(self, event: Any) -> NewEvent:
        encoded = self._registry.encode(event)
        return NewEvent(self._event_ids(), encoded.type, encoded.data, encoded.schema_version)


# -- exactly-once commands ----------------------------------------------------------
# Exactly-once commands: one recorded outcome per command id, and it is final.
#
# A command id's outcome is its commit or its rejection, whichever was written
# first: the ``CommandLog`` keeps rejections under the same unique key as the
# event store's commits, so two copies of one command (two processes, or a
# paused instance and its successor) cannot record both. The loser of that race
# gets the winner's outcome, as does every later repeat.
#
# Each outcome carries the command's fingerprint (``fingerprint``).
# A repeat whose fingerprint differs is another command sent under a used id:
# it gets ``IdempotencyKeyReused``, never the other command's outcome. An
# outcome stored without a fingerprint is returned as it is.


class CommandDeduplicator:
    """Finds and records command outcomes by command id."""

    def __init__(self, command_log: CommandLog, codes: RejectionCodes) -> None:
        self._log = command_log
        self._codes = codes

    async def previous_outcome(self, command_id: str, fingerprint: str) -> CommandOutcome | None:
        """The outcome recorded for ``command_id`` (one lookup), or None if it has none.

        A commit is returned as a duplicate; a rejection is raised again.
        """
        record = await self._log.find_outcome(command_id)
        return None if record is None else self.answer(record, command_id, fingerprint)

    async def twin_outcome(self, command_id: str, fingerprint: str) -> CommandOutcome:
        """The outcome another copy of this command id recorded before our append."""
        for _ in range(3):
            record = await self._log.find_outcome(command_id)
            if record is not None:
                return self.answer(record, command_id, fingerprint)
            await asyncio.sleep(0.01)
        raise RuntimeError(f"command {command_id!r} was refused as recorded, but has no outcome")

    async def settle_rejection(
        self, command_id: str, stream_id: str, fingerprint: str, error: DomainError
    ) -> CommandOutcome:
        """Record ``error`` as the command's outcome unless the id already has one.

        One insert decides: either ours is the outcome (``error`` is raised), or
        a copy of the command recorded its commit or rejection first, and that
        is the answer, as it is for every later repeat.
        """
        record = self._codes.to_record(command_id, stream_id, error, fingerprint)
        stored = await self._log.record_rejection(record)
        if stored is record:
            raise error
        return self.answer(stored, command_id, fingerprint)

    def answer(self, record: CommandRecord, command_id: str, fingerprint: str) -> CommandOutcome:
        """``record`` as the answer to a command with ``fingerprint``.

        Raises ``IdempotencyKeyReused`` when ``record`` belongs to another
        command, and the stored rejection when it is one.
        """
        if isinstance(record, CommandRejection):
            _check_same(record.fingerprint, command_id, fingerprint)
            raise self._codes.rebuild(record)
        _check_same(record.events[0].metadata.fingerprint, command_id, fingerprint)
        return duplicate(record)


def _check_same(stored: str | None, command_id: str, fingerprint: str) -> None:
    if stored is not None and stored != fingerprint:
        raise IdempotencyKeyReused(command_id, command_type(stored))


def duplicate(commit: AppendResult) -> CommandOutcome:
    """A stored commit as the outcome of a repeated command."""
    return CommandOutcome(commit.stream_id, commit.version, commit.events, duplicate=True)


# -- the decision loop --------------------------------------------------------------
# The optimistic decide -> append loop behind ``ApplicationService.handle``.
#
# Decides on the cached or current state, appends at the loaded version and, on
# ``ConcurrencyError``, catches up and decides again (jittered exponential
# backoff) for at most ``retry_seconds`` after the first conflict and at most
# ``max_attempts`` attempts, whichever ends first; then ``ConcurrencyConflict``.
# The service runs one command per stream at a time in this process
# (``StreamLocks``), so a conflict here means another process wrote
# the stream. The time is this process's monotonic clock, never a wall clock. A
# client's ``expected_version`` is never retried: a mismatch raises
# ``ConcurrencyConflict`` with the actual version.


class Tally:
    """What happened while one command was handled, for its observer."""

    __slots__ = ("conflicts",)

    def __init__(self) -> None:
        self.conflicts = 0  # appends that lost a version race


class DecisionLoop:
    """Runs one command against its stream until it commits, is rejected or gives up."""

    def __init__(
        self,
        store: EventStore,
        repository: Repository,
        writer: CommitWriter,
        *,
        max_attempts: int,
        backoff: Backoff,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if retry_seconds < 0:
            raise ValueError("retry_seconds must be >= 0")
        self._store = store
        self._repository = repository
        self._writer = writer
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._retry_seconds = retry_seconds
        self._clock = clock

    async def run(
        self,
        decider: AnyDecider,
        stream_id: str,
        command: Any,
        context: CommandContext,
        fingerprint: str | None = None,
        tally: Tally | None = None,
    ) -> CommandOutcome:
        """Decide and append with the command's ``fingerprint`` in the commit metadata.

        Raises ``DuplicateCommandError`` when another copy of the command id
        recorded its outcome first (the caller answers with that outcome).
        Appends that lost a version race are counted in ``tally``.
        """
        deadline: float | None = None
        loaded = self._repository.cached(decider, stream_id)
        fresh = loaded is None
        if loaded is None:
            loaded = await self._repository.current(decider, stream_id)
        for attempt in range(1, self._max_attempts + 1):
            loaded, events = await self._decide(decider, stream_id, command, context, loaded, fresh)
            if not events:
                return CommandOutcome(stream_id, loaded.version)
            try:
                result = await self._writer.append(
                    decider, stream_id, loaded.version, events, context, fingerprint
                )
            except DuplicateCommandError:
                raise
            except ConcurrencyError as conflict:
                if tally is not None:
                    tally.conflicts += 1
                if deadline is None:  # the clock is read only once a conflict happened
                    deadline = self._clock() + self._retry_seconds
                await self._after_conflict(stream_id, conflict, context, attempt, deadline)
                loaded, fresh = await self._repository.current(decider, stream_id, loaded), True
                continue
            self._repository.committed(decider, stream_id, loaded, events, result.version)
            return CommandOutcome(stream_id, result.version, result.events)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    async def _decide(
        self,
        decider: AnyDecider,
        stream_id: str,
        command: Any,
        context: CommandContext,
        loaded: Loaded,
        fresh: bool,
    ) -> tuple[Loaded, Sequence[Any]]:
        """The decision on ``loaded``, and the state it was made on.

        A cached (not ``fresh``) state is only trusted for an append, which the
        store checks. A rejection, a decision without events or an expected
        version mismatch made on it is checked against the store first: if the
        stream moved on, the command is decided again on the current state.
        """
        expected = context.expected_version
        if expected is not None and loaded.version != expected:
            if fresh:
                raise ConcurrencyConflict(stream_id, expected, loaded.version)
            return await self._decide_again(decider, stream_id, command, context, loaded)
        try:
            events = decider.decide(loaded.state, command)
        except DomainError as rejection:
            if fresh:
                raise
            return await self._decide_again(decider, stream_id, command, context, loaded, rejection)
        if events or fresh:
            return loaded, events
        return await self._decide_again(decider, stream_id, command, context, loaded)

    async def _decide_again(
        self,
        decider: AnyDecider,
        stream_id: str,
        command: Any,
        context: CommandContext,
        cached: Loaded,
        rejection: DomainError | None = None,
    ) -> tuple[Loaded, Sequence[Any]]:
        """Catch ``cached`` up and decide on the current state.

        If the stream did not move, ``rejection`` (made on ``cached``) stands.
        """
        current = await self._repository.current(decider, stream_id, cached)
        if rejection is not None and current.version == cached.version:
            raise rejection
        return await self._decide(decider, stream_id, command, context, current, True)

    async def _after_conflict(
        self,
        stream_id: str,
        conflict: ConcurrencyError,
        context: CommandContext,
        attempt: int,
        deadline: float,
    ) -> None:
        """Raise if the conflict is final, else back off before the caller catches up."""
        left = deadline - self._clock()
        if context.expected_version is None and attempt < self._max_attempts and left > 0:
            await asyncio.sleep(min(self._backoff.delay(attempt), left))
            return
        actual = conflict.actual_version
        if actual is None:
            actual = await self._store.stream_version(stream_id)
        raise ConcurrencyConflict(stream_id, conflict.expected_version, actual) from conflict


# -- observing commands ---------------------------------------------------------------


CommandResult = Literal["ok", "duplicate", "rejected", "conflict", "error"]
"""How a command ended: committed (or decided without events), answered with a
recorded commit, rejected by a ``DomainError``, refused with
``ConcurrencyConflict``, or failed with any other exception."""


class CommandObserver(Protocol):
    """Told by the Application Service about every command it handles.

    ``command`` is entered around the whole handling of one command and yields
    the context to handle it with (an observer may add the trace context that
    the commit stores); ``on_command`` is called once inside it, when the
    command ended, with its type name, result, duration in seconds and the
    number of its appends that lost a version race to another process.
    """

    def command(
        self, command: object, context: CommandContext
    ) -> AbstractContextManager[CommandContext]: ...

    def on_command(
        self, type_name: str, result: CommandResult, seconds: float, conflicts: int
    ) -> None: ...


class Unobserved:
    """The ``CommandObserver`` of a service nobody observes: every hook does nothing."""

    def command(
        self, command: object, context: CommandContext
    ) -> AbstractContextManager[CommandContext]:
        return nullcontext(context)

    def on_command(
        self, type_name: str, result: CommandResult, seconds: float, conflicts: int
    ) -> None:
        return None


UNOBSERVED = Unobserved()


# -- the service --------------------------------------------------------------------


_NO_CONTEXT = CommandContext()


class ApplicationService:
    """Load -> decide -> append, with dedupe, retries, snapshots and a state cache.

    ``deciders`` maps each command class to its decider. ``rejection_types``
    lists the ``DomainError`` subclasses whose stored rejections are rebuilt by
    code (``domain.aggregate.rejection_types`` of the wired domains). ``snapshot_every``
    0 disables snapshots; its default is the ``SNAPSHOT_EVERY`` setting's (20),
    the interval at which rehydrating the worst case (19 events after the
    latest snapshot) stays within the rehydration target in BENCHMARKS.md.
    ``cache_size`` 0 disables the aggregate cache. ``observer`` is told about
    every command (metrics, log context, traces).
    ``retry_seconds`` bounds how long a command without ``expected_version``
    keeps retrying after its first conflict with another process (keep it
    below the API's request time bound, so that clients get the typed
    ``ConcurrencyConflict``); ``max_attempts`` bounds its attempts. Call
    ``close()`` (or ``drain()``) before shutdown so background snapshot writes
    finish.
    """

    def __init__(
        self,
        store: EventStore,
        snapshots: SnapshotStore,
        command_log: CommandLog,
        registry: EventRegistry,
        deciders: Mapping[type, AnyDecider],
        *,
        snapshot_every: int = 20,
        cache_size: int = 1024,
        max_attempts: int = 1_000,
        retry_seconds: float = 5.0,
        backoff: Backoff | None = None,
        rejection_types: Iterable[type[DomainError]] = (),
        event_ids: Callable[[], str] = new_event_id,
        observer: CommandObserver = UNOBSERVED,
    ) -> None:
        self._store = store
        self._observer = observer
        self._deciders = dict(deciders)
        codes = RejectionCodes(rejection_types)
        self._dedupe = CommandDeduplicator(command_log, codes)
        self._repository = Repository(
            store, snapshots, registry, self._deciders.values(),
            snapshot_every=snapshot_every, cache_size=cache_size,
        )  # fmt: skip
        self._loop = DecisionLoop(
            store, self._repository, CommitWriter(store, registry, event_ids),
            max_attempts=max_attempts, backoff=backoff or Backoff(), retry_seconds=retry_seconds,
        )  # fmt: skip
        self._streams = StreamLocks()
        self.snapshots = self._repository.writer

    # -- commands -----------------------------------------------------------------

    async def handle(self, command: Any, context: CommandContext | None = None) -> CommandOutcome:
        """Apply ``command`` at most once; raise its ``DomainError`` if rejected.

        ``context`` None means ``CommandContext()``: no id, no expected version.
        """
        observer, tally = self._observer, Tally()
        result: CommandResult = "error"
        started = time.perf_counter()
        with observer.command(command, context or _NO_CONTEXT) as observed:
            try:
                outcome = await self._handle(command, observed, tally)
                result = "duplicate" if outcome.duplicate else "ok"
                return outcome
            except DomainError as error:
                result = "conflict" if error.code == ConcurrencyConflict.code else "rejected"
                raise
            finally:
                seconds = time.perf_counter() - started
                observer.on_command(type(command).__name__, result, seconds, tally.conflicts)

    async def _handle(self, command: Any, context: CommandContext, tally: Tally) -> CommandOutcome:
        decider = self.decider_for(command)
        stream_id = decider.stream_id(command)
        command_id = context.command_id
        if command_id is None:
            return await self._run(decider, stream_id, command, context, None, tally)
        print_ = fingerprint(command, stream_id)
        previous = await self._dedupe.previous_outcome(command_id, print_)
        if previous is not None:
            return previous
        try:
            return await self._run(decider, stream_id, command, context, print_, tally)
        except DuplicateCommandError:
            pass  # a copy of the command recorded its outcome first: that is the answer
        except ConcurrencyConflict:
            raise
        except DomainError as error:
            return await self._dedupe.settle_rejection(command_id, stream_id, print_, error)
        return await self._dedupe.twin_outcome(command_id, print_)

    async def _run(
        self,
        decider: AnyDecider,
        stream_id: str,
        command: Any,
        context: CommandContext,
        print_: str | None,
        tally: Tally,
    ) -> CommandOutcome:
        """The decision loop, one command per stream at a time in this process."""
        turn = await self._streams.acquire(stream_id)
        try:
            return await self._loop.run(decider, stream_id, command, context, print_, tally)
        finally:
            self._streams.release(stream_id, turn)

    def decider_for(self, command: Any) -> AnyDecider:
        """The decider handling ``command``'s class (``LookupError`` if none)."""
        decider = self._deciders.get(type(command))
        if decider is None:
            raise LookupError(f"no decider handles {type(command).__name__}")
        return decider

    # -- queries ------------------------------------------------------------------

    async def load(
        self,
        stream_type_or_decider: str | AnyDecider,
        stream_id: str,
        *,
        at_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Loaded:
        """The aggregate's state now, as of a stream version, or as of a moment.

        ``stream_type_or_decider`` is a decider or its ``stream_type``
        ("account"). ``at_version`` beyond the stream's end gives its current
        state; the returned ``version`` is always the last event folded in (0:
        none). ``as_of`` must be timezone-aware. Past states use the latest
        usable snapshot at or below the target.
        """
        decider = self._repository.resolve(stream_type_or_decider)
        if at_version is not None and as_of is not None:
            raise ValueError("give at_version or as_of, not both")
        if as_of is not None:
            if as_of.tzinfo is None:
                raise ValueError("as_of must be timezone-aware")
            at_version = await self._store.version_at(stream_id, as_of)
        if at_version is None:
            return await self._repository.current(decider, stream_id)
        if at_version < 0:
            raise ValueError("at_version must be >= 0")
        return await self._repository.past(decider, stream_id, at_version)

    async def history(
        self,
        stream_type_or_decider: str | AnyDecider,
        stream_id: str,
        *,
        to_version: int | None = None,
    ) -> list[HistoryEntry]:
        """Every event of the stream (up to ``to_version``) with the state right after it."""
        decider = self._repository.resolve(stream_type_or_decider)
        return await self._repository.history(decider, stream_id, to_version)

    # -- lifecycle ------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for the background snapshot writes scheduled so far."""
        await self.snapshots.drain()

    async def close(self) -> None:
        """Finish background work and refuse new snapshot writes."""
        await self.snapshots.close()
