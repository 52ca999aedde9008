"""Rebuild a projection from position 0 into a fresh collection, then swap it in.

Public surface: ``Rebuilder`` (``rebuild(name)``, ``names``), ``RebuildResult``,
``RebuildError``, ``ProjectorFactory``, and ``ReadAhead`` (reading the global
order ahead of a slower writer).

1. Take the lease ``rebuild:<name>`` (one rebuild per projection at a time;
   status reports show ``rebuilding`` while it is held).
2. Project every event into a new physical collection ``<name>__r<ms>`` while
   the live consumer keeps updating the old one, which readers keep reading.
3. Ask the live consumer to stand aside (the checkpoint's pause flag), take
   its lease (a new epoch) and raise the checkpoint's fence to that epoch, so
   a live consumer that was paused past its lease can no longer write; catch
   up with the head.
4. Switch: one write, conditional on the epoch, sets the checkpoint's
   position and target (the new collection); then the logical name is pointed
   at it (fenced by the epoch too). A crash in between is finished by the next
   consumer to take over (``CheckpointStore.follow_target``). Lift the pause,
   release the leases.
5. After ``drop_grace`` seconds (readers' alias caches expire), drop the old
   collection.

A rebuild that loses either lease (paused past it) fails with ``RebuildError``
at its next fenced write and switches nothing.

Reading runs ahead of writing: a rebuild is bound by two sequential loops on
the database, reading events in position order and writing read-model
documents. ``ReadAhead`` runs the reads in a task of their own, at most
``max_batches`` batches ahead, and ``take`` returns every batch read meanwhile
as one chunk (up to ``max_events``). When writing is the slower side the chunks
grow, and since projectors write each document once per ``handle_batch``
(merged guarded writes, one ``insert_new`` of statement lines), a larger chunk
means fewer writes for the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from projections.checkpoints import CheckpointStore, now_ms, rebuild_lease_name
from projections.consumer import EventHandler, new_owner_id, take_lease
from projections.documents import DocumentStore, FencedOut
from store.protocol import EventStore, LeaseHolder, Leases, RecordedEvent

ProjectorFactory = Callable[[str], EventHandler]
"""Makes a projector that writes to the given physical collection."""


Progress = Callable[[int], None]
"""Told the global position a rebuild has projected up to, after each batch."""


def _quiet(position: int) -> None:
    """The default ``Progress``: nothing to report to."""


class RebuildError(RuntimeError):
    """The rebuild could not run or lost its lease; the old collection is untouched."""


@dataclass(frozen=True)
class RebuildResult:
    name: str
    position: int
    events: int
    seconds: float
    old_collection: str
    new_collection: str


class Rebuilder:
    """Runs rebuilds of the projections ``factories`` knows; see the module docstring."""

    def __init__(
        self,
        store: EventStore,
        documents: DocumentStore,
        checkpoints: CheckpointStore,
        leases: Leases,
        factories: Mapping[str, ProjectorFactory],
        *,
        batch_size: int = 1000,
        write_batch: int = 10_000,
        lease_ttl: float = 10.0,
        drop_grace: float = 1.0,
        takeover_timeout: float | None = None,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._docs = documents
        self._checkpoints = checkpoints
        self._leases = leases
        self._factories = dict(factories)
        self._batch_size = batch_size
        self._write_batch = max(write_batch, batch_size)
        self._ttl = lease_ttl
        self._drop_grace = drop_grace
        self._takeover_timeout = takeover_timeout or 3 * lease_ttl
        self._owner = owner or new_owner_id()
        self._paused: str | None = None
        self._lost = False
        self._rebuild_lease: LeaseHolder | None = None
        self._consumer_lease: LeaseHolder | None = None

    @property
    def names(self) -> list[str]:
        return list(self._factories)

    async def rebuild(self, name: str, progress: Progress | None = None) -> RebuildResult:
        """Rebuild ``name``; ``progress(position)`` is called after each batch written."""
        if name not in self._factories:
            known = ", ".join(self._factories)
            raise RebuildError(f"no read model named {name!r} (read models: {known})")
        held = await take_lease(self._leases, rebuild_lease_name(name), self._owner, self._ttl)
        if held is None:
            raise RebuildError(f"a rebuild of {name!r} is already running")
        self._rebuild_lease, self._consumer_lease = held, None
        self._lost = False
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(name))
        try:
            return await self._run(name, progress or _quiet)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._finish(name)

    async def _run(self, name: str, progress: Progress) -> RebuildResult:
        started = time.monotonic()
        physical = f"{name}__r{now_ms()}"
        await self._docs.drop(physical)
        handler = self._factories[name](physical)
        await handler.prepare()
        await self._checkpoints.mark_rebuilding(name, now_ms())
        position, events = await self._catch_up(handler, 0, progress)
        await self._take_consumer_lease(name)
        position, more = await self._catch_up(handler, position, progress)
        old = await self._switch(name, position, physical)
        await self._finish(name)
        if old != physical:
            await asyncio.sleep(self._drop_grace)
            await self._docs.drop(old)
        seconds = time.monotonic() - started
        return RebuildResult(name, position, events + more, seconds, old, physical)

    async def _catch_up(
        self, handler: EventHandler, position: int, progress: Progress
    ) -> tuple[int, int]:
        """Project everything after ``position``; reads run ahead while the handler writes.

        Each ``handle_batch`` gets every batch read meanwhile (``ReadAhead``),
        up to ``write_batch`` events, so slow writes become fewer, larger ones.
        """
        handled = 0
        ahead = max(1, self._write_batch // self._batch_size)
        async with ReadAhead(self._store, position, self._batch_size, max_batches=ahead) as reads:
            while events := await reads.take(self._write_batch):
                if self._lost:
                    raise RebuildError("the rebuild lost its lease")
                await handler.handle_batch(events)
                position = events[-1].position or position
                handled += len(events)
                progress(position)
        return position, handled

    async def _switch(self, name: str, position: int, physical: str) -> str:
        """Checkpoint and target, then the alias, under the consumer lease's epoch."""
        held = self._consumer_lease
        if self._lost or held is None:
            raise RebuildError("the rebuild lost its lease")
        try:
            old = await self._docs.resolve(name, fresh=True)
            await self._checkpoints.switch(name, position, physical, held.epoch)
            await self._docs.swap(name, physical, epoch=held.epoch)
        except FencedOut as error:
            raise RebuildError(f"the rebuild lost the lease of {name!r}: {error}") from error
        return old

    async def _pause(self, name: str) -> None:
        """Ask the live consumer to stand aside for a TTL (on the lease clock)."""
        now = await self._leases.clock_ms()
        await self._checkpoints.pause(name, now + int(self._ttl * 1000), now_ms())

    async def _take_consumer_lease(self, name: str) -> None:
        """Pause the live consumer and hold its lease, so nothing else writes meanwhile.

        The checkpoint's fence goes up to the lease's epoch at once: a consumer
        paused past its lease can move nothing afterwards.
        """
        self._paused = name
        await self._pause(name)
        deadline = time.monotonic() + self._takeover_timeout
        while (held := await take_lease(self._leases, name, self._owner, self._ttl)) is None:
            if time.monotonic() > deadline:
                raise RebuildError(f"the live consumer {name!r} did not stand aside")
            await asyncio.sleep(0.05)
        self._consumer_lease = held
        try:
            await self._checkpoints.fence(name, held.epoch, self._owner)
        except FencedOut as error:
            raise RebuildError(f"the rebuild lost the lease of {name!r}: {error}") from error

    async def _heartbeat(self, name: str) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            if self._rebuild_lease is not None:
                self._rebuild_lease = await self._leases.renew(self._rebuild_lease, self._ttl)
            if self._rebuild_lease is None:
                self._lost = True
            if self._paused is not None:
                await self._pause(name)
            if self._consumer_lease is not None:
                self._consumer_lease = await self._leases.renew(self._consumer_lease, self._ttl)
                if self._consumer_lease is None:
                    self._lost = True

    async def _finish(self, name: str) -> None:
        """Lift the pause and give every lease back (idempotent)."""
        self._consumer_lease = None
        if self._paused is not None:
            self._paused = None
            await self._leases.release(name, self._owner)
        await self._checkpoints.unpause(name)
        await self._leases.release(rebuild_lease_name(name), self._owner)


# -- reading ahead -------------------------------------------------------------

_END: list[RecordedEvent] = []


class ReadAhead:
    """Events after position ``after``, read ``batch_size`` at a time, ahead of the writer."""

    def __init__(
        self, store: EventStore, after: int, batch_size: int, *, max_batches: int = 10
    ) -> None:
        self._store = store
        self._position = after
        self._batch_size = batch_size
        self._queue: asyncio.Queue[list[RecordedEvent]] = asyncio.Queue(maxsize=max_batches)
        self._task: asyncio.Task[None] | None = None
        self._error: Exception | None = None
        self._ended = False

    async def __aenter__(self) -> ReadAhead:
        self._task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            while events := await self._store.read_all(self._position, self._batch_size):
                self._position = events[-1].position or self._position
                await self._queue.put(events)
        except Exception as error:  # handed to the writer by take()
            self._error = error
        await self._queue.put(_END)

    async def take(self, max_events: int) -> list[RecordedEvent]:
        """The next events in order: one batch, plus the batches already read for as
        long as the chunk is below ``max_events``; ``[]`` once the head is reached.

        Raises the reader's error, if reading failed.
        """
        chunk: list[RecordedEvent] = []
        if self._ended:
            return chunk
        batch = await self._queue.get()
        while True:
            if batch is _END:
                self._ended = True
                if self._error is not None:
                    raise self._error
                return chunk
            chunk.extend(batch)
            if len(chunk) >= max_events or self._queue.empty():
                return chunk
            batch = self._queue.get_nowait()
