"""The consumer runtime shared by projectors and process managers.

A ``Consumer`` reads ``store.read_all(after=checkpoint)`` in batches, hands each
batch to its handler in position order, then moves its durable checkpoint.
Delivery is at least once (a crash between handling and the checkpoint replays
the batch), so handlers must be idempotent.

- One active instance per consumer name cluster-wide: the instance holding the
  lease ``name`` runs, the others stand by and take over once it expires.
- Reading: through the process's ``SharedLog`` (``projections.shared_log``):
  the consumers and the live feed of a process share one read of the global
  order per new batch instead of one each.
- Wake-up: the store's in-process ``notifier`` (``wait_beyond``). While
  someone in this process keeps it current (``watch_bound``: the store stamps
  every position here, or the sequencer watches the head), an idle consumer
  reads nothing: it waits on the notifier and reads when it moved, waking
  otherwise only to renew its lease. Without such a watcher it polls the store
  every ``poll_interval`` for positions stamped by other processes.
- Batches a handler ignores: a handler may offer ``accepts(event) -> bool``
  (the projectors of one stream type, the process manager). A batch with no
  accepted event is not handed over, and its checkpoint write is held back up
  to ``SKIPPED_CHECKPOINT_DELAY`` (the next handled batch's write covers it):
  a deposit costs the transfer consumers no write at all.
- Poison events: when a batch fails, its events are retried one by one with
  backoff; an event that still fails stops the consumer, which keeps its lease
  and reports the position and error (state ``stopped_on_error``). It never
  skips. ``retry()`` (or ``CheckpointStore.request_retry`` from any process)
  resumes it. Connection failures are not poison: they are retried forever.
- A rebuild of the consumer's collection may ask it to stand aside (the
  checkpoint's pause flag); it releases the lease until the pause ends.
- Fencing: every acquisition has a new lease epoch, and taking over raises the
  checkpoint's fence to it before the checkpoint and the read-model target are
  read again. Every checkpoint write is conditional on the epoch; once one is
  refused (``FencedOut``: this instance was paused or cut off past its lease and
  someone else took over) the instance stops handling at once and takes the
  lease again as a newcomer, re-reading checkpoint and target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from projections.checkpoints import CheckpointStore, FencedOut
from projections.consumer_group import ConsumerGroup
from projections.handler import (
    ConsumerSettings,
    EventHandler,
    attempt,
    describe,
    new_owner_id,
    position_of,
)
from projections.leasing import ConsumerLease
from projections.progress import ProgressBoard, wait_for_events
from projections.shared_log import shared_log
from projections.status import (
    REBUILDING,
    RUNNING,
    STANDBY,
    STOPPED,
    STOPPED_ON_ERROR,
    ConsumerStatus,
    status_at,
)
from store.protocol import EventStore, Leases, RecordedEvent

__all__ = [
    "Consumer",
    "ConsumerGroup",
    "ConsumerSettings",
    "EventHandler",
    "consumer_group",
    "new_owner_id",
]

log = logging.getLogger(__name__)

# How long the checkpoint write for batches a handler ignores may wait (``_skip``).
SKIPPED_CHECKPOINT_DELAY = 1.0


class Consumer:
    """One named consumer instance; see the module docstring."""

    def __init__(
        self,
        handler: EventHandler,
        store: EventStore,
        checkpoints: CheckpointStore,
        leases: Leases,
        *,
        settings: ConsumerSettings | None = None,
        owner: str | None = None,
        progress: ProgressBoard | None = None,
    ) -> None:
        self.handler = handler
        self._store = store
        self._checkpoints = checkpoints
        self.settings = settings or ConsumerSettings()
        self.owner = owner or new_owner_id()
        self._progress = progress
        self.position = 0
        self.state = STOPPED
        self.last_error: str | None = None
        self.error_position: int | None = None
        self._lease = ConsumerLease(leases, handler.name, self.owner, self.settings.lease_ttl)
        self._retry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._notifier = store.notifier
        self._log = shared_log(store)  # one read of the global order for the whole process
        self._accepts = getattr(handler, "accepts", None)  # optional: see _skip
        self._unsaved_by: float | None = None  # when a held-back checkpoint is due
        self._read_since_takeover = False

    @property
    def name(self) -> str:
        return self.handler.name

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Run in a background task until ``stop``."""
        if self._task is None or self._task.done():
            self.state = STANDBY
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"consumer:{self.name}"
            )

    async def stop(self, *, release: bool = True) -> None:
        """Stop the task and give the lease up, so another instance takes over at once.

        ``release=False`` keeps the lease until it expires, as a crash would.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if release:
            with contextlib.suppress(Exception):
                if self._lease.holding and self.state == RUNNING:
                    await self._save_skipped(now=True)
                await self._lease.release()
        self._lease.lose()
        self.state = STOPPED

    def retry(self) -> None:
        """Resume after ``stopped_on_error``: the failed event is tried again."""
        self._retry.set()

    async def status(self) -> ConsumerStatus:
        head = await self._store.head_position()
        return await status_at(
            self._store,
            self.name,
            self.position,
            head,
            self.state,
            last_error=self.last_error,
            error_position=self.error_position,
            owner=self.owner if self._lease.holding else None,
        )

    # -- the loop ----------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._cycle()
                failures = 0
            except asyncio.CancelledError:
                raise
            except FencedOut as error:
                self._fenced_out(error)
            except Exception as error:
                # Lost connections, or a fault outside any event (reading the store,
                # writing a checkpoint): not poison, so retry the cycle later.
                failures += 1
                self.last_error = describe(error)
                transient = isinstance(error, self.settings.transient_errors)
                log.log(
                    logging.WARNING if transient else logging.ERROR,
                    "consumer %s: %s (retrying)",
                    self.name,
                    self.last_error,
                    exc_info=not transient,
                )
                await asyncio.sleep(self.settings.backoff(failures))

    async def _cycle(self) -> None:
        if not await self._ensure_lease():
            await asyncio.sleep(self._standby_wait())
            return
        if self.state == STOPPED_ON_ERROR:
            await self._wait_for_retry()
            return
        await self._save_skipped()
        if self._quiet():
            await self._idle_wait()
            return
        if self._drained(await self._next_batch()):
            await self._idle_wait()

    async def step(self) -> bool:
        """Handle the next batch, if any, as the lease holder; return whether there was one.

        Takes (or renews) the lease first, like a cycle of the loop: without
        it, checkpoint writes would not be fenced by an epoch of this instance.
        False when another instance holds the lease or the consumer is paused.
        """
        if not await self._ensure_lease():
            return False
        read = await self._next_batch()
        await self._save_skipped(now=True)  # a stepped consumer leaves its checkpoint durable
        return read > 0

    async def _next_batch(self) -> int:
        events = await self._log.read_all(self.position, self.settings.batch_size)
        self._read_since_takeover = True
        if events:
            await self._process(events)
        return len(events)

    def _quiet(self) -> bool:
        """Whether the notifier, kept current in this process, knows of nothing to read.

        Never before the first read after taking over: the notifier may not have
        seen the store's head yet.
        """
        notifier = self._notifier
        return (
            self._read_since_takeover
            and notifier is not None
            and notifier.watched
            and notifier.head <= self.position
        )

    def _drained(self, read: int) -> bool:
        """Whether to wait for news rather than read again, after reading ``read`` events.

        After an empty read, always. After a short batch too, when the store's
        notifier knows of nothing beyond it, as the feed tail does: that saves the
        empty read (a cycle per batch under load; a query on MongoDB). Other
        processes' events reach the notifier through reads and the sequencer, as
        they do for an idle consumer.
        """
        if read == 0:
            return True
        if read >= self.settings.batch_size or self.state != RUNNING:
            return False
        return self._notifier is not None and self._notifier.head <= self.position

    async def _process(self, events: Sequence[RecordedEvent]) -> None:
        accepts = self._accepts
        if accepts is not None and not any(accepts(event) for event in events):
            self._skip(position_of(events[-1]))
            return
        try:
            await self.handler.handle_batch(events)
        except self.settings.transient_errors:
            raise
        except Exception:
            log.warning("consumer %s: batch failed, retrying event by event", self.name)
            await self._process_one_by_one(events)
            return
        await self._advance(position_of(events[-1]))

    async def _process_one_by_one(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            error = await attempt(self.handler, event, self.settings)
            if error is not None:
                await self._stop_on_error(event, error)
                return
            await self._advance(position_of(event))

    async def _stop_on_error(self, event: RecordedEvent, error: BaseException) -> None:
        self.state = STOPPED_ON_ERROR
        self.last_error = describe(error)
        self.error_position = event.position
        log.error(
            "consumer %s stopped at position %s (%s %s): %s",
            self.name,
            event.position,
            event.type,
            event.event_id,
            self.last_error,
        )
        self._retry.clear()
        await self._checkpoints.report(
            self.name, STOPPED_ON_ERROR, self.last_error, event.position, epoch=self._lease.epoch
        )

    async def _wait_for_retry(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry.wait(), self.settings.poll_interval)
        requested = self._retry.is_set()
        if not requested:
            requested = (await self._checkpoints.load(self.name)).retry_requested()
        if requested:
            self._retry.clear()
            self.state = RUNNING
            self.last_error = None
            self.error_position = None
            await self._checkpoints.report(self.name, RUNNING, epoch=self._lease.epoch)

    async def _advance(self, position: int) -> None:
        await self._checkpoints.advance(self.name, position, self.owner, self._lease.epoch)
        self._unsaved_by = None  # this write covers any skipped batch below it
        self._moved(position)

    def _moved(self, position: int) -> None:
        self.position = max(self.position, position)
        if self._progress is not None:
            self._progress.advance(self.name, self.position)

    def _skip(self, position: int) -> None:
        """Pass a batch the handler ignores: no handling, and the checkpoint write later.

        The durable checkpoint follows at the next handled batch's write or
        ``SKIPPED_CHECKPOINT_DELAY`` seconds later, whichever comes first, so a
        run of batches this consumer ignores costs one write per delay, not one
        each. Nothing was written for them, so a crash before that write only
        replays batches that are ignored again, and fencing loses nothing: a
        stale instance skipping a batch writes nothing either.
        """
        self._moved(position)
        if self._unsaved_by is None:
            self._unsaved_by = time.monotonic() + SKIPPED_CHECKPOINT_DELAY

    async def _save_skipped(self, *, now: bool = False) -> None:
        """Write the checkpoint held back by ``_skip`` once it is due (or ``now``)."""
        due = self._unsaved_by
        if due is not None and (now or time.monotonic() >= due):
            await self._advance(self.position)

    # -- lease ---------------------------------------------------------------

    async def _ensure_lease(self) -> bool:
        """Hold (or renew, every third of the TTL) the lease; False when standing by."""
        if self._lease.fresh():
            return True
        checkpoint = await self._checkpoints.load(self.name)
        if checkpoint.paused(await self._lease.clock_ms()):
            await self._stand_aside()
            return False
        held = await self._lease.acquire()
        if held is not None and not self._lease.holding:
            await self._take_over(held.epoch)
        elif held is None:
            if self._lease.holding:
                holder = await self._lease.holder()
                log.warning(
                    "consumer %s: lost its lease (%s) to %s; standing by",
                    self.name,
                    self.owner,
                    holder,
                )
            self.state = STANDBY
        self._lease.settle(held)
        return held is not None

    async def _take_over(self, epoch: int) -> None:
        # Fence first, then read the checkpoint and the target: whatever the
        # previous holders wrote is visible now, and they can write no more.
        checkpoint = await self._checkpoints.fence(self.name, epoch, self.owner)
        await self._checkpoints.follow_target(checkpoint, epoch)
        position = checkpoint.position
        log.info(
            "consumer %s: active here (%s, epoch %s) from position %s",
            self.name,
            self.owner,
            epoch,
            position,
        )
        self.position = position
        self._read_since_takeover = False
        self._unsaved_by = None
        self.state = RUNNING
        self.last_error = None
        self.error_position = None
        await self.handler.prepare()  # resolves the read-model target afresh
        await self._checkpoints.report(self.name, RUNNING, epoch=epoch)
        if self._progress is not None:
            self._progress.advance(self.name, position)

    def _fenced_out(self, error: FencedOut) -> None:
        """A write under our epoch was refused: stop, and take over again as a newcomer."""
        log.warning(
            "consumer %s (%s): %s; stopping, will take over anew", self.name, self.owner, error
        )
        self._lease.lose()
        self.state = STANDBY

    async def _stand_aside(self) -> None:
        await self._lease.release()
        self.state = REBUILDING

    # -- waiting -------------------------------------------------------------

    async def _idle_wait(self) -> None:
        notifier = self._notifier
        due = self._lease.renew_in()
        if self._unsaved_by is not None:
            due = min(due, self._unsaved_by - time.monotonic())
        if notifier is not None and notifier.watched and notifier.head <= self.position:
            # Woken by the notifier; otherwise only to renew the lease or write
            # a held-back checkpoint.
            await notifier.wait_beyond(self.position, max(due, 0.0))
            return
        timeout = max(min(self.settings.poll_interval, due), 0.0)
        await wait_for_events(notifier, self.position, timeout)

    def _standby_wait(self) -> float:
        return min(self.settings.poll_interval, self.settings.lease_ttl / 3)


def consumer_group(
    handlers: Sequence[EventHandler],
    store: EventStore,
    checkpoints: CheckpointStore,
    leases: Leases,
    *,
    settings: ConsumerSettings | None = None,
    progress: ProgressBoard | None = None,
    owner: str | None = None,
) -> ConsumerGroup:
    """One ``Consumer`` per handler, sharing settings, progress board and owner id."""
    return ConsumerGroup(
        [
            Consumer(
                handler,
                store,
                checkpoints,
                leases,
                settings=settings,
                owner=owner,
                progress=progress,
            )
            for handler in handlers
        ]
    )
