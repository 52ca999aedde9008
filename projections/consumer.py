"""The consumer runtime shared by projectors and process managers.

Public surface: ``Consumer`` (``start``, ``stop``, ``step``, ``retry``,
``status``), ``ConsumerGroup`` (all the consumers of a process),
``ConsumerSettings``, the ``EventHandler`` protocol a consumer drives,
``new_owner_id``, ``take_lease`` (the verified lease acquisition rebuilds use
too) and ``SharedLog``/``shared_log`` (one read of the global order per process).

A ``Consumer`` reads ``store.read_all(after=checkpoint)`` in batches, hands each
batch to its handler in position order, then moves its durable checkpoint.
Delivery is at least once (a crash between handling and the checkpoint replays
the batch), so handlers must be idempotent.

- One active instance per consumer name cluster-wide: the instance holding the
  lease ``name`` runs, the others stand by and take over once it expires.
- Reading: through the process's ``SharedLog`` (below): the consumers and the
  live feed of a process share one read of the global order per new batch
  instead of one each.
- Wake-up: the store's in-process ``notifier`` (``wait_beyond``). While
  someone in this process keeps it current (``watch_bound``: the store stamps
  every position here, or the sequencer watches the head), an idle consumer
  reads nothing: it waits on the notifier and reads when it moved, waking
  otherwise only to renew its lease. Without such a watcher it polls the store
  every ``poll_interval`` for positions stamped by other processes.
- Batches a handler ignores: every handler says which events it handles
  (``accepts(event) -> bool``; the projectors of one stream type and the process
  manager name theirs, ``ReadModelProjector`` accepts every event). A batch with
  no accepted event is not handed over, and its checkpoint write is held back up
  to ``SKIPPED_CHECKPOINT_DELAY`` (the next handled batch's write covers it):
  a deposit costs the transfer consumers no write at all.
- Batches under load: the loop reads at most once per ``batch_interval``
  (20 ms): what arrives meanwhile is handled as one batch, one write per
  collection; a read after a quiet moment or a full batch goes at once (``_pace``).
- Checkpoints under load: a handled batch's checkpoint is written at once when
  the previous write is at least ``checkpoint_interval`` old, else held back
  until it is (``_handled``): one write per interval while batches keep coming.
  Waiters in this process see progress at once; other processes see durable
  checkpoints up to an interval behind.
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

Shared log: every consumer of a process and the live feed tail the same global
order from nearly the same position. A ``SharedLog`` keeps the latest events
read (a contiguous run of positions, at most ``keep`` of them) and reads past
its end once, for everyone: readers at the end wait for that single read in
flight and then take their slices. Readers behind the kept run (catching up,
rebuilding) read the store directly. Sharing changes nothing a reader sees:
positions tile 1, 2, 3, ... and a reader that has seen position p has seen
every position below it (``store.stamping``), so ``read_all(after)`` is the
same contiguous run whoever asks, and events never change once visible. A
store whose positions a sequencer stamps (``MongoEventStore``) hands over,
through ``add_stamp_listener``, the events each sequencer pass of this process
stamped, before it advances the notifier: when they continue the kept run
they are kept, and the readers woken for them read nothing from the database.
``shared_log(store)`` gives the one ``SharedLog`` of a store object, so every
``Consumer`` and ``Feed`` built on the same store shares it without wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pymongo.errors import ConnectionFailure

from projections.checkpoints import (
    REBUILDING,
    RUNNING,
    STANDBY,
    STOPPED,
    STOPPED_ON_ERROR,
    CheckpointStore,
    ConsumerStatus,
    ProgressBoard,
    status_at,
)
from projections.documents import FencedOut
from store.notifier import HeadNotifier
from store.protocol import EventStore, LeaseHolder, Leases, RecordedEvent

log = logging.getLogger(__name__)

# How long the checkpoint write for batches a handler ignores may wait (``_skip``).
SKIPPED_CHECKPOINT_DELAY = 1.0

# -- handlers and settings -----------------------------------------------------


class EventHandler(Protocol):
    """What a consumer drives: a projector or a process manager."""

    name: str

    async def prepare(self) -> None:
        """Called each time this instance becomes the active one (resolve targets, indexes)."""
        ...

    def accepts(self, event: RecordedEvent) -> bool:
        """Whether ``handle_batch`` does anything for ``event``.

        A batch in which no event is accepted is not handed over; its checkpoint
        write is held back (see the module docstring). Return True for every
        event to be handed every batch.
        """
        ...

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Apply ``events`` (in position order) idempotently; raise to signal failure."""
        ...


@dataclass(frozen=True)
class ConsumerSettings:
    """Batch size, polling, lease TTL, checkpoint pace and the poison-event retry schedule.

    ``transient_errors`` (lost connections) are retried forever and never
    stop a consumer; any other error is retried ``max_attempts`` times per
    event with exponential backoff, then stops it. ``checkpoint_interval`` is
    the shortest time between two checkpoint writes of a consumer handling
    batch after batch (``Consumer._handled``): under load its writes coalesce
    to one per interval; 0 writes one per batch. ``batch_interval`` is the
    shortest time between two reads of the loop (``Consumer._pace``): under
    load the events of that time make one batch; 0 reads as soon as it can.
    """

    batch_size: int = 500
    poll_interval: float = 0.5
    lease_ttl: float = 10.0
    checkpoint_interval: float = 0.1
    batch_interval: float = 0.02
    max_attempts: int = 5
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    transient_errors: tuple[type[BaseException], ...] = (ConnectionFailure, ConnectionError)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.backoff_initial * (2 ** (attempt - 1)), self.backoff_max))


def new_owner_id() -> str:
    """A lease owner id naming this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _attempt(
    handler: EventHandler, event: RecordedEvent, settings: ConsumerSettings
) -> BaseException | None:
    """Try ``event`` up to ``max_attempts`` times; the last error, or None on success.

    Transient errors propagate at once (the caller retries the whole cycle).
    """
    last: BaseException | None = None
    for number in range(1, settings.max_attempts + 1):
        try:
            await handler.handle_batch([event])
            return None
        except settings.transient_errors:
            raise
        except Exception as error:
            last = error
            if number < settings.max_attempts:
                await asyncio.sleep(settings.backoff(number))
    return last


def _position_of(event: RecordedEvent) -> int:
    if event.position is None:
        raise ValueError(f"event {event.event_id} has no global position")
    return event.position


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- leases --------------------------------------------------------------------


async def take_lease(
    leases: Leases, name: str, owner: str, ttl_seconds: float
) -> LeaseHolder | None:
    """Take ``name`` for ``owner`` as a newcomer (a new epoch); the acquisition, verified.

    Trust but verify: nx-27017 0.8.1 applies an update whose filter is ``{_id, $or: [...]}``
    to a different document, so a lease built on such a filter may report a false
    success (and move another lease). One extra read per acquisition rules that out;
    renewals filter on ``{_id, owner, epoch}`` and need no such read.
    """
    taken = await leases.acquire(name, owner, ttl_seconds)
    if taken is None:
        return None
    holder = await leases.holder(name)
    if holder is None or (holder.owner, holder.epoch) != (owner, taken.epoch):
        return None
    return taken


class _ConsumerLease:
    """Lease ``name`` held by ``owner``, renewed every third of ``ttl`` seconds.

    ``current`` (the acquisition this instance works under, with its epoch)
    changes only through ``settle``, ``lose`` and ``release``: a consumer that
    just took the lease finishes taking over before it counts as holding, so
    a take-over that fails is tried again (as a newcomer) on the next round.
    """

    def __init__(self, leases: Leases, name: str, owner: str, ttl: float) -> None:
        self._leases = leases
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.current: LeaseHolder | None = None
        self._renewed_at = 0.0

    @property
    def holding(self) -> bool:
        return self.current is not None

    @property
    def epoch(self) -> int:
        """The fencing token of the acquisition held; 0 when none is."""
        return 0 if self.current is None else self.current.epoch

    def fresh(self) -> bool:
        """Held and renewed less than a third of the TTL ago: no need to renew yet."""
        return self.holding and time.monotonic() - self._renewed_at < self.ttl / 3

    def renew_in(self) -> float:
        """Seconds until the next renewal is due (negative when overdue)."""
        return self.ttl / 3 - (time.monotonic() - self._renewed_at)

    async def acquire(self) -> LeaseHolder | None:
        """Renew the acquisition held (same epoch) or, holding none, take a new one."""
        if self.current is not None:
            return await self._leases.renew(self.current, self.ttl)
        return await take_lease(self._leases, self.name, self.owner, self.ttl)

    def settle(self, held: LeaseHolder | None) -> None:
        """Record the outcome of an acquisition (and when it happened)."""
        self._renewed_at = time.monotonic()
        self.current = held

    def lose(self) -> None:
        """A write under this epoch was refused: the next acquisition is a newcomer's."""
        self.current = None

    async def holder(self) -> LeaseHolder | None:
        return await self._leases.holder(self.name)

    async def clock_ms(self) -> int:
        """Now on the clock the lease (and a rebuild's pause) is judged by."""
        return await self._leases.clock_ms()

    async def release(self) -> None:
        """Give the lease up if held, so another instance takes over at once."""
        if self.current is not None:
            await self._leases.release(self.name, self.owner)
        self.current = None


# -- reading the global order --------------------------------------------------

_ATTRIBUTE = "_shared_log"  # where a store object keeps its SharedLog


class SharedLog:
    """The global order of ``store`` read once per process (see "Shared log" above).

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
    # Kept on the store object itself: it lives and dies with the store.
    attributes = vars(store)
    found = attributes.get(_ATTRIBUTE)
    if not isinstance(found, SharedLog):
        found = attributes[_ATTRIBUTE] = SharedLog(store)
    return found


async def _wait_for_events(notifier: HeadNotifier | None, position: int, timeout: float) -> None:  # noqa: ASYNC109
    """Wait up to ``timeout`` seconds for events beyond ``position``.

    Woken by the store's in-process ``notifier`` when it has one; without one,
    or when it knows of positions not yet readable here, this polls instead.
    """
    if notifier is not None and notifier.head <= position:
        await notifier.wait_beyond(position, timeout)
    else:
        await asyncio.sleep(timeout if notifier is None else min(timeout, 0.02))


# -- consumers -----------------------------------------------------------------


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
        self._lease = _ConsumerLease(leases, handler.name, self.owner, self.settings.lease_ttl)
        self._retry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._notifier = store.notifier
        self._log = shared_log(store)  # one read of the global order for the whole process
        self._unsaved_by: float | None = None  # when a held-back checkpoint is due
        self._saved_at = float("-inf")  # monotonic start of the last checkpoint write
        self._read_at = float("-inf")  # monotonic start of the last paced read
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
                    await self._save_held_back(now=True)
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
                self.last_error = _describe(error)
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
        await self._save_held_back()
        if self._quiet():
            await self._idle_wait()
            return
        await self._pace()
        read = await self._next_batch()
        if read >= self.settings.batch_size:
            self._read_at = float("-inf")  # a full batch: more is waiting, read on at once
        if self._drained(read):
            await self._idle_wait()

    async def _pace(self) -> None:
        """Read at most one batch per ``batch_interval``: under load, events coalesce.

        A read right after the previous one waits out the rest of the interval,
        so what arrived meanwhile is handled as one batch, with one write per
        collection instead of one per sequencer pass; a read after a quiet
        moment, or after a full batch (catching up), goes at once.
        """
        pause = self._read_at + self.settings.batch_interval - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        self._read_at = time.monotonic()

    async def step(self) -> bool:
        """Handle the next batch, if any, as the lease holder; return whether there was one.

        Takes (or renews) the lease first, like a cycle of the loop: without
        it, checkpoint writes would not be fenced by an epoch of this instance.
        False when another instance holds the lease or the consumer is paused.
        """
        if not await self._ensure_lease():
            return False
        read = await self._next_batch()
        await self._save_held_back(now=True)  # a stepped consumer leaves its checkpoint durable
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
        accepts = self.handler.accepts
        if not any(accepts(event) for event in events):
            self._skip(_position_of(events[-1]))
            return
        try:
            await self.handler.handle_batch(events)
        except self.settings.transient_errors:
            raise
        except Exception:
            log.warning("consumer %s: batch failed, retrying event by event", self.name)
            await self._process_one_by_one(events)
            return
        await self._handled(_position_of(events[-1]))

    async def _process_one_by_one(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            error = await _attempt(self.handler, event, self.settings)
            if error is not None:
                await self._stop_on_error(event, error)
                return
            await self._advance(_position_of(event))

    async def _stop_on_error(self, event: RecordedEvent, error: BaseException) -> None:
        self.state = STOPPED_ON_ERROR
        self.last_error = _describe(error)
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
        self._saved_at = time.monotonic()
        await self._checkpoints.advance(self.name, position, self.owner, self._lease.epoch)
        self._unsaved_by = None  # this write covers any skipped batch below it
        self._moved(position)

    def _moved(self, position: int) -> None:
        self.position = max(self.position, position)
        if self._progress is not None:
            self._progress.advance(self.name, self.position)

    async def _handled(self, position: int) -> None:
        """Checkpoint a handled batch: at once, or held back while the last write is recent.

        A write less than ``checkpoint_interval`` after the previous one is held
        back until that interval has passed (or the next write covers it), so a
        consumer handling batch after batch writes once per interval, not once
        per batch, while one handling a batch now and then writes each at once.
        Handlers are idempotent, so a crash before the held-back write only
        replays what was handled since the last one. This process's waiters see
        the progress at once (``ProgressBoard``); other processes see the durable
        checkpoint up to an interval later. An instance whose lease was taken
        over learns it at its next lease renewal or write, so it may handle up
        to an interval of batches more before it stops; the new holder handles
        them again from the fenced checkpoint, which idempotent handlers make
        harmless.
        """
        due = self._saved_at + self.settings.checkpoint_interval
        if time.monotonic() >= due:
            await self._advance(position)
            return
        self._moved(position)
        if self._unsaved_by is None or due < self._unsaved_by:
            self._unsaved_by = due

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

    async def _save_held_back(self, *, now: bool = False) -> None:
        """Write the checkpoint held back by ``_skip`` or ``_handled`` once due (or ``now``)."""
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
        await _wait_for_events(notifier, self.position, timeout)

    def _standby_wait(self) -> float:
        return min(self.settings.poll_interval, self.settings.lease_ttl / 3)


class ConsumerGroup:
    """Starts, stops and reports every consumer of one process."""

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = {c.name: c for c in consumers}

    def __getitem__(self, name: str) -> Consumer:
        return self._consumers[name]

    @property
    def names(self) -> list[str]:
        return list(self._consumers)

    def start(self) -> None:
        for consumer in self._consumers.values():
            consumer.start()

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._consumers.values()))

    def retry(self, name: str) -> None:
        self._consumers[name].retry()

    async def statuses(self) -> list[ConsumerStatus]:
        return [await c.status() for c in self._consumers.values()]


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
