"""The sequencer's loop: one active instance cluster-wide stamps global positions.

Each process may run a ``Sequencer``; the one holding the ``sequencer`` lease
drains the backlog with ``store.sequence()`` passes (safe even if two ever run
at once, see ``store.stamping``), the others only watch the head so their own
``notifier`` wakes local consumers. Appends in this process wake it at once
(``notify``); a poll covers commits written by other processes. The poll backs
off while nothing happens, from ``poll_interval`` doubling up to
``idle_interval``, and is back at ``poll_interval`` after any local append or
any pass that found work. So an idle process costs one query per
``idle_interval``, and a commit from another process is stamped (by the
holder) or seen (by the others) within ``idle_interval`` plus a round trip.
While the loop runs, the store's notifier carries that bound (``watch_bound``)
so that this process's consumers and live feed wait on the notifier instead of
polling the store themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid

from pymongo.errors import PyMongoError

from store.protocol import EventStore, LeaseHolder, Leases

log = logging.getLogger(__name__)

LEASE_NAME = "sequencer"


class Sequencer:
    """Run ``await run()`` as a task; ``stop()`` ends it, releasing the lease."""

    def __init__(
        self,
        store: EventStore,
        leases: Leases,
        *,
        owner: str | None = None,
        lease_name: str = LEASE_NAME,
        lease_ttl: float = 5.0,
        poll_interval: float = 0.05,
        idle_interval: float = 1.0,
        max_passes: int = 50,
    ) -> None:
        self.store = store
        self.leases = leases
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease_name = lease_name
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.idle_interval = max(idle_interval, poll_interval)
        self.max_passes = max_passes
        self.stamped = 0  # commits stamped by this instance (for status and tests)
        self._wake = asyncio.Event()
        self._stopping = False
        self._renew_at = 0.0  # monotonic time after which the lease must be renewed
        self._held: LeaseHolder | None = None  # the acquisition (epoch) this instance holds
        self._seen_head = 0  # the head as last read while standing by
        self._local_appends = 0  # appends in this process since the last tick
        store.add_append_listener(self.notify)

    def notify(self) -> None:
        """Wake the loop now (called by the store after each append)."""
        self._local_appends += 1
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Tick until ``stop()``; database outages are logged and retried with backoff."""
        interval = self.poll_interval
        notifier = self.store.notifier
        watched = notifier.watched
        if not watched:
            # The bound a consumer here may rely on instead of polling: one idle
            # interval (the error backoff's cap is 1 s as well).
            notifier.watch_bound = max(self.idle_interval, 1.0)
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    head, local = self._seen_head, self._local_appends
                    self._local_appends = 0
                    stamped = await self.tick()
                    # Poll closely while another process writes (commits this
                    # process did not announce, or a head that moved) and, standing
                    # by, until the holder stamps our own appends. The holder's own
                    # appends wake it anyway.
                    standby = self._held is None
                    busy = stamped > local or self._seen_head != head or (standby and local > 0)
                    interval = self.poll_interval if busy else min(interval * 2, self.idle_interval)
                except PyMongoError as error:
                    log.warning("sequencer %s: %s; retrying in %.2fs", self.owner, error, interval)
                    self._renew_at = 0.0
                    interval = min(interval * 2, 1.0)
                await self._sleep(interval)
        finally:
            if not watched:
                notifier.watch_bound = None
            await self._release()

    async def tick(self) -> int:
        """One round: drain the backlog if this instance holds the lease, else watch the head."""
        if not await self._hold_lease():
            self._seen_head = await self.store.head_position()
            return 0
        total = 0
        for _ in range(self.max_passes):
            if not await self._hold_lease():  # a long drain renews on the way
                break
            stamped = await self.store.sequence()
            total += stamped
            # Drained: commits appended since wake the loop (here) or are polled for.
            if stamped == 0 or self.store.backlog_drained:
                break
        self.stamped += total
        return total

    async def _hold_lease(self) -> bool:
        """Renew the acquisition held (same epoch) or take the lease as a newcomer.

        A renewal refused means someone took the lease since (this instance was
        paused or cut off past it): the drain stops before its next pass. Passes
        need no epoch on their writes: claims are inserts that tile positions
        through unique indexes and copies are idempotent (``store.stamping``), so
        a stale sequencer still running a pass cannot corrupt the order.
        """
        if self._held is not None and time.monotonic() < self._renew_at:
            return True
        started = time.monotonic()
        if self._held is not None:
            self._held = await self.leases.renew(self._held, self.lease_ttl)
            if self._held is None:
                log.warning("sequencer %s lost its lease; standing by", self.owner)
        else:
            self._held = await self.leases.acquire(self.lease_name, self.owner, self.lease_ttl)
        if self._held is not None:
            # Renew well before expiry: a third of the TTL, measured from before the call.
            self._renew_at = started + self.lease_ttl / 3
            return True
        self._renew_at = 0.0
        return False

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _release(self) -> None:
        self._held = None
        try:
            await self.leases.release(self.lease_name, self.owner)
        except PyMongoError as error:
            log.warning("sequencer %s could not release its lease: %s", self.owner, error)
