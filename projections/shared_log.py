"""One read of the global order per process, shared by every reader in it.

Every consumer of a process (the projectors, the process manager) and the live
feed tail the same global order from nearly the same position. Each used to
read it on its own: one database query per reader per new commit. A
``SharedLog`` keeps the latest events read (a contiguous run of positions, at
most ``keep`` of them) and reads past its end once, for everyone: readers at
the end wait for that single read in flight and then take their slices.
Readers behind the kept run (catching up, rebuilding) read the store directly.

Sharing changes nothing a reader sees: positions tile 1, 2, 3, ... and a
reader that has seen position p has seen every position below it
(``store.stamping``), so ``read_all(after)`` is the same contiguous run
whoever asks, and events never change once visible.

A store whose positions a sequencer stamps (``MongoEventStore``) hands over,
through ``add_stamp_listener``, the events each sequencer pass of this process
stamped, before it advances the notifier: when they continue the kept run
they are kept, and the readers woken for them read nothing from the database.

``shared_log(store)`` gives the one ``SharedLog`` of a store object, so every
``Consumer`` and ``Feed`` built on the same store shares it without wiring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from store.protocol import EventStore, RecordedEvent

_ATTRIBUTE = "_shared_log"  # where a store object keeps its SharedLog


class SharedLog:
    """The global order of ``store`` read once per process; see the module docstring.

    One event loop. ``read_all(after, limit)`` answers as ``store.read_all`` does
    for the whole log (no stream or type filter).
    """

    def __init__(self, store: EventStore, *, batch_size: int = 500, keep: int = 2000) -> None:
        self.store = store
        self.batch_size = batch_size
        self.keep = keep
        self.reads = 0  # store reads made at the shared end (for tests and figures)
        self._events: list[RecordedEvent] = []  # positions _start + 1, _start + 2, ...
        self._start = 0
        self._reading: asyncio.Task[None] | None = None
        self.handed = 0  # events kept from this process's sequencer passes
        store.add_stamp_listener(self._stamped)

    @property
    def end(self) -> int:
        """The last position kept (or where the next shared read starts)."""
        return self._start + len(self._events)

    async def read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        kept = self._slice(after, limit)
        if kept or limit <= 0:
            return kept
        if after != self.end:
            if self._events or after < self.end or self._reading is not None:
                # Behind the kept run (or ahead of a read in flight): read alone.
                return await self.store.read_all(after, limit)
            self._start = after  # nothing kept yet: the shared end starts here
        if self._reading is None:
            size = max(limit, self.batch_size)
            self._reading = asyncio.get_running_loop().create_task(self._read_end(size))
            self._reading.add_done_callback(_retrieve)
        await asyncio.shield(self._reading)
        return self._slice(after, limit)

    def _slice(self, after: int, limit: int) -> list[RecordedEvent]:
        first = after - self._start  # index of position after + 1
        if first < 0 or first >= len(self._events):
            return []
        return self._events[first : first + limit]

    async def _read_end(self, size: int) -> None:
        try:
            self.reads += 1
            batch = await self.store.read_all(self.end, size)
            self._keep(batch)
        finally:
            self._reading = None

    def _stamped(self, events: Sequence[RecordedEvent]) -> None:
        """Events a sequencer pass here just made visible, in position order."""
        if events and events[0].position == self.end + 1:
            self.handed += len(events)
            self._keep(list(events))

    def _keep(self, batch: list[RecordedEvent]) -> None:
        if not batch or batch[0].position != self.end + 1:
            return  # not the continuation (an empty read, or a commit straddling the end)
        self._events.extend(batch)
        excess = len(self._events) - self.keep
        if excess > self.keep // 2:  # trim in steps: amortised, not per read
            del self._events[:excess]
            self._start += excess


def _retrieve(task: asyncio.Task[None]) -> None:
    """Every reader waiting for a failed read gets its error; none may be left waiting."""
    if not task.cancelled():
        task.exception()


def shared_log(store: EventStore) -> SharedLog:
    """The ``SharedLog`` of ``store`` (one per store object, made on first use)."""
    # Kept on the store object itself (never through a proxy's __getattr__):
    # it lives and dies with the store.
    attributes = vars(store)
    log = attributes.get(_ATTRIBUTE)
    if not isinstance(log, SharedLog):
        log = attributes[_ATTRIBUTE] = SharedLog(store)
    return log
