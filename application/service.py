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
(``application.streamlocks``): commands to a hot stream queue up instead of
racing each other, so a conflict means another process wrote the stream, and
a command without ``expected_version`` is refused only when other processes
keep winning for ``retry_seconds``.

Rejections of commands with an id are recorded in the ``CommandLog``, under
the same unique key as commits: whichever of a commit and a rejection of one
command id is written first is its only outcome, and every copy of the
command, racing or later, gets that answer (``application.dedupe``). A
``ConcurrencyConflict`` or ``IdempotencyKeyReused`` is not recorded: nothing
happened, and the id keeps its first outcome. A decision without events
records nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from application.context import CommandContext
from application.decision import DecisionLoop
from application.dedupe import CommandDeduplicator
from application.errors import ConcurrencyConflict
from application.fingerprint import fingerprint
from application.ids import new_event_id
from application.loading import AnyDecider
from application.outcomes import CommandOutcome, HistoryEntry, Loaded
from application.rejections import RejectionCodes
from application.repository import Repository
from application.retry import Backoff
from application.streamlocks import StreamLocks
from application.writing import CommitWriter
from domain.aggregate import DomainError
from domain.codec import EventRegistry
from domain.errors import ERROR_TYPES
from store.protocol import CommandLog, DuplicateCommandError, EventStore, SnapshotStore

__all__ = ["ApplicationService", "CommandOutcome", "HistoryEntry", "Loaded"]

_NO_CONTEXT = CommandContext()


class ApplicationService:
    """Load -> decide -> append, with dedupe, retries, snapshots and a state cache.

    ``deciders`` maps each command class to its decider. ``rejection_types``
    lists the ``DomainError`` subclasses whose stored rejections are rebuilt by
    code (default: the bank's ``domain.errors.ERROR_TYPES``). ``snapshot_every``
    0 disables snapshots; ``cache_size`` 0 disables the aggregate cache.
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
        snapshot_every: int = 100,
        cache_size: int = 1024,
        max_attempts: int = 1_000,
        retry_seconds: float = 5.0,
        backoff: Backoff | None = None,
        rejection_types: Iterable[type[DomainError]] | None = None,
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self._store = store
        self._deciders = dict(deciders)
        codes = RejectionCodes(ERROR_TYPES.values() if rejection_types is None else rejection_types)
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
        context = context or _NO_CONTEXT
        decider = self.decider_for(command)
        stream_id = decider.stream_id(command)
        command_id = context.command_id
        if command_id is None:
            return await self._run(decider, stream_id, command, context, None)
        print_ = fingerprint(command, stream_id)
        previous = await self._dedupe.previous_outcome(command_id, print_)
        if previous is not None:
            return previous
        try:
            return await self._run(decider, stream_id, command, context, print_)
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
    ) -> CommandOutcome:
        """The decision loop, one command per stream at a time in this process."""
        turn = await self._streams.acquire(stream_id)
        try:
            return await self._loop.run(decider, stream_id, command, context, print_)
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
