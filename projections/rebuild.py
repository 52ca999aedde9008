"""Rebuild a projection from position 0 into a fresh collection, then swap it in.

1. Take the lease ``rebuild:<name>`` (one rebuild per projection at a time;
   status reports show ``rebuilding`` while it is held).
2. Project every event into a new physical collection ``<name>__r<ms>`` while
   the live consumer keeps updating the old one, which readers keep reading.
3. Ask the live consumer to stand aside (the checkpoint's pause flag), take
   its lease, and catch up with the head.
4. Point the logical name at the new collection, set the consumer's checkpoint
   to the rebuilt position (in that order: a crash in between replays events,
   which is harmless), lift the pause, release the leases.
5. After ``drop_grace`` seconds (readers' alias caches expire), drop the old
   collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from projections.checkpoints import CheckpointStore, now_ms
from projections.consumer import EventHandler, new_owner_id
from projections.documents import DocumentStore
from projections.leasing import take_lease
from projections.read_ahead import ReadAhead
from projections.status import rebuild_lease_name
from store.protocol import EventStore, Leases

ProjectorFactory = Callable[[str], EventHandler]
"""Makes a projector that writes to the given physical collection."""


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

    @property
    def names(self) -> list[str]:
        return list(self._factories)

    async def rebuild(self, name: str) -> RebuildResult:
        if name not in self._factories:
            known = ", ".join(self._factories)
            raise RebuildError(f"no read model named {name!r} (read models: {known})")
        if not await take_lease(self._leases, rebuild_lease_name(name), self._owner, self._ttl):
            raise RebuildError(f"a rebuild of {name!r} is already running")
        self._lost = False
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(name))
        try:
            return await self._run(name)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._finish(name)

    async def _run(self, name: str) -> RebuildResult:
        started = time.monotonic()
        physical = f"{name}__r{now_ms()}"
        await self._docs.drop(physical)
        handler = self._factories[name](physical)
        await handler.prepare()
        await self._checkpoints.mark_rebuilding(name, now_ms())
        position, events = await self._catch_up(handler, 0)
        await self._take_consumer_lease(name)
        position, more = await self._catch_up(handler, position)
        old = await self._docs.swap(name, physical)
        await self._checkpoints.force(name, position)
        await self._finish(name)
        if old != physical:
            await asyncio.sleep(self._drop_grace)
            await self._docs.drop(old)
        seconds = time.monotonic() - started
        return RebuildResult(name, position, events + more, seconds, old, physical)

    async def _catch_up(self, handler: EventHandler, position: int) -> tuple[int, int]:
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
        return position, handled

    async def _take_consumer_lease(self, name: str) -> None:
        """Pause the live consumer and hold its lease, so nothing else writes meanwhile."""
        self._paused = name
        await self._checkpoints.pause(name, now_ms() + int(self._ttl * 1000), now_ms())
        deadline = time.monotonic() + self._takeover_timeout
        while not await take_lease(self._leases, name, self._owner, self._ttl):
            if time.monotonic() > deadline:
                raise RebuildError(f"the live consumer {name!r} did not stand aside")
            await asyncio.sleep(0.05)

    async def _heartbeat(self, name: str) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            if not await take_lease(self._leases, rebuild_lease_name(name), self._owner, self._ttl):
                self._lost = True
            if self._paused is not None:
                until = now_ms() + int(self._ttl * 1000)
                await self._checkpoints.pause(name, until, now_ms())
                await take_lease(self._leases, name, self._owner, self._ttl)

    async def _finish(self, name: str) -> None:
        """Lift the pause and give every lease back (idempotent)."""
        if self._paused is not None:
            self._paused = None
            await self._leases.release(name, self._owner)
        await self._checkpoints.unpause(name)
        await self._leases.release(rebuild_lease_name(name), self._owner)
