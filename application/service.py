"""The Application Service: the one way commands reach the event store.

``handle(command, context)``:

1. dedupe: a command id with a stored commit returns that commit's outcome
   (``duplicate=True``); one with a stored rejection raises the same typed
   ``DomainError`` again;
2. load: the cached state, or the latest usable snapshot plus newer events;
3. decide: the aggregate's pure ``decide``;
4. append at the loaded version with the commit metadata, every event with a
   fresh event id;
5. on ``ConcurrencyError``: catch up and decide again (bounded attempts,
   jittered exponential backoff); a client's ``expected_version`` is never
   retried: a mismatch raises ``ConcurrencyConflict`` with the actual version.

Rejections of commands with an id are recorded in the ``CommandLog``. A
``ConcurrencyConflict`` is not recorded: nothing happened, a repeat may work.

Known limit: a commit and a rejection cannot share one unique key, so two
copies of one command id racing can, in a rare interleaving (the rejected copy
decided on an older state and finished before the other committed), answer
one client with the rejection and the other with the commit; every later
repeat returns the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from application.context import CommandContext
from application.dedupe import CommandDeduplicator
from application.errors import ConcurrencyConflict
from application.ids import new_event_id
from application.loading import AnyDecider
from application.outcomes import CommandOutcome, HistoryEntry, Loaded
from application.rejections import RejectionCodes
from application.repository import Repository
from application.retry import Backoff
from application.writing import CommitWriter
from domain.aggregate import DomainError
from domain.codec import EventRegistry
from domain.errors import ERROR_TYPES
from store.protocol import (
    CommandLog,
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    SnapshotStore,
)

__all__ = ["ApplicationService", "CommandOutcome", "HistoryEntry", "Loaded"]

_NO_CONTEXT = CommandContext()


class ApplicationService:
    """Load -> decide -> append, with dedupe, retries, snapshots and a state cache.

    ``deciders`` maps each command class to its decider. ``rejection_types``
    lists the ``DomainError`` subclasses whose stored rejections are rebuilt by
    code (default: the bank's ``domain.errors.ERROR_TYPES``). ``snapshot_every``
    0 disables snapshots; ``cache_size`` 0 disables the aggregate cache. Call
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
        max_attempts: int = 10,
        backoff: Backoff | None = None,
        rejection_types: Iterable[type[DomainError]] | None = None,
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._store = store
        self._deciders = dict(deciders)
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._dedupe = CommandDeduplicator(
            store,
            command_log,
            RejectionCodes(ERROR_TYPES.values() if rejection_types is None else rejection_types),
        )
        self._writer = CommitWriter(store, registry, event_ids)
        self._repository = Repository(
            store,
            snapshots,
            registry,
            self._deciders.values(),
            snapshot_every=snapshot_every,
            cache_size=cache_size,
        )
        self.snapshots = self._repository.writer

    # -- commands -----------------------------------------------------------------

    async def handle(self, command: Any, context: CommandContext | None = None) -> CommandOutcome:
        """Apply ``command`` at most once; raise its ``DomainError`` if rejected.

        ``context`` None means ``CommandContext()``: no id, no expected version.
        """
        context = context or _NO_CONTEXT
        decider = self.decider_for(command)
        stream_id = decider.stream_id(command)
        if context.command_id is not None:
            previous = await self._dedupe.previous_outcome(context.command_id)
            if previous is not None:
                return previous
        try:
            return await self._decide_and_append(decider, stream_id, command, context)
        except ConcurrencyConflict:
            raise
        except DomainError as error:
            if context.command_id is None:
                raise
            return await self._dedupe.settle_rejection(context.command_id, stream_id, error)

    def decider_for(self, command: Any) -> AnyDecider:
        """The decider handling ``command``'s class (``LookupError`` if none)."""
        decider = self._deciders.get(type(command))
        if decider is None:
            raise LookupError(f"no decider handles {type(command).__name__}")
        return decider

    async def _decide_and_append(
        self, decider: AnyDecider, stream_id: str, command: Any, context: CommandContext
    ) -> CommandOutcome:
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
                    decider, stream_id, loaded.version, events, context
                )
            except DuplicateCommandError as twin:
                return await self._dedupe.twin_outcome(twin.command_id)
            except ConcurrencyError as conflict:
                await self._after_conflict(stream_id, conflict, context, attempt)
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
    ) -> None:
        """Raise if the conflict is final, else back off before the caller catches up."""
        if context.expected_version is None and attempt < self._max_attempts:
            await asyncio.sleep(self._backoff.delay(attempt))
            return
        actual = conflict.actual_version
        if actual is None:
            actual = await self._store.stream_version(stream_id)
        raise ConcurrencyConflict(stream_id, conflict.expected_version, actual) from conflict

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
        return await self._repository.load(
            stream_type_or_decider, stream_id, at_version=at_version, as_of=as_of
        )

    async def history(
        self,
        stream_type_or_decider: str | AnyDecider,
        stream_id: str,
        *,
        to_version: int | None = None,
    ) -> list[HistoryEntry]:
        """Every event of the stream (up to ``to_version``) with the state right after it."""
        return await self._repository.history(
            stream_type_or_decider, stream_id, to_version=to_version
        )

    # -- lifecycle ------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for the background snapshot writes scheduled so far."""
        await self.snapshots.drain()

    async def close(self) -> None:
        """Finish background work and refuse new snapshot writes."""
        await self.snapshots.close()
