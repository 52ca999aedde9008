"""The optimistic decide -> append loop behind ``ApplicationService.handle``.

Decides on the cached or current state, appends at the loaded version and, on
``ConcurrencyError``, catches up and decides again (jittered exponential
backoff) for at most ``retry_seconds`` after the first conflict and at most
``max_attempts`` attempts, whichever ends first; then ``ConcurrencyConflict``.
The service runs one command per stream at a time in this process
(``application.streamlocks``), so a conflict here means another process wrote
the stream. The time is this process's monotonic clock, never a wall clock. A
client's ``expected_version`` is never retried: a mismatch raises
``ConcurrencyConflict`` with the actual version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from application.context import CommandContext
from application.errors import ConcurrencyConflict
from application.loading import AnyDecider
from application.outcomes import CommandOutcome, Loaded
from application.repository import Repository
from application.retry import Backoff
from application.writing import CommitWriter
from domain.aggregate import DomainError
from store.protocol import ConcurrencyError, DuplicateCommandError, EventStore


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
    ) -> CommandOutcome:
        """Decide and append with the command's ``fingerprint`` in the commit metadata.

        Raises ``DuplicateCommandError`` when another copy of the command id
        recorded its outcome first (the caller answers with that outcome).
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
