"""How far each consumer is: durable checkpoints, in-process progress, status, waits.

Public surface:

- ``CheckpointStore``/``Checkpoint``: each consumer's durable position, the
  fence of its lease, and the flags operators and rebuilds set on it;
- ``ProgressBoard``: consumer progress in this process, with waiters;
- ``StatusReporter``/``ConsumerStatus`` (and the states ``RUNNING``, ``STANDBY``,
  ``REBUILDING``, ``STOPPED_ON_ERROR``, ``STOPPED``): checkpoint, head, lag,
  state, last error and parked items, from durable state in any process;
- ``ReadYourWrites``: bounded waits until the read side caught up with a write;
- ``now_ms``, ``rebuild_lease_name``.

Checkpoints: one document per consumer in the ``checkpoints`` collection:
``{_id: name, position, epoch, target, updated_at_ms, owner, state, error,
error_position, stopped_at_ms, retry_requested_ms, pause_until_ms,
rebuilding_since_ms}``. All times are epoch milliseconds (updated documents
must not hold datetimes, see docs/architecture.md section 6).

The document is also the fence of the consumer's lease: ``epoch`` is the
newest lease epoch that took the consumer over (``fence``). Every write the
lease holder makes (``advance``, ``report``, a rebuild's ``switch``) is one
write conditional on that epoch, so a holder that lost its lease (paused past
it, partitioned) cannot move the checkpoint any more: it gets ``FencedOut``.
``position`` only moves forward except through ``switch`` (a rebuild swapping
in its collection, which also records it as ``target``).

Progress: consumers running in this process call ``ProgressBoard.advance``
after each checkpoint move, and waiters return as soon as a consumer reached a
position, without polling. Progress made in other processes is seen through
the durable checkpoints, which ``ReadYourWrites`` polls as well.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from projections.documents import DocumentStore, FencedOut
from store.protocol import EventStore, Leases
from store.records import epoch_ms

COLLECTION = "checkpoints"


def now_ms() -> int:
    """This process's wall clock (bookkeeping times only; never judges a lease)."""
    return epoch_ms()


@dataclass(frozen=True)
class Checkpoint:
    """A consumer's durable progress and the state its active instance reported."""

    name: str
    position: int = 0
    epoch: int = 0
    target: str | None = None
    updated_at_ms: int | None = None
    owner: str | None = None
    state: str | None = None
    error: str | None = None
    error_position: int | None = None
    stopped_at_ms: int | None = None
    retry_requested_ms: int | None = None
    pause_until_ms: int | None = None
    rebuilding_since_ms: int | None = None

    def paused(self, at_ms: int) -> bool:
        """Whether a rebuild asked the live consumer to stand aside at ``at_ms``.

        ``pause_until_ms`` and ``at_ms`` are on the lease clock (the database's).
        """
        return self.pause_until_ms is not None and self.pause_until_ms > at_ms

    def retry_requested(self) -> bool:
        """Whether an operator asked to retry after the consumer stopped on an error."""
        if self.retry_requested_ms is None:
            return False
        return self.stopped_at_ms is None or self.retry_requested_ms >= self.stopped_at_ms


class CheckpointStore:
    """Checkpoints kept in a ``DocumentStore`` (in memory or MongoDB)."""

    def __init__(self, documents: DocumentStore, *, collection: str = COLLECTION) -> None:
        self._docs = documents
        self._collection = collection

    async def load(self, name: str) -> Checkpoint:
        doc = await self._docs.get(self._collection, name)
        return _from_doc(name, doc)

    async def load_all(self, names: list[str]) -> dict[str, Checkpoint]:
        docs = await self._docs.get_many(self._collection, names)
        return {n: _from_doc(n, docs.get(n)) for n in names}

    async def fence(self, name: str, epoch: int, owner: str) -> Checkpoint:
        """Take the checkpoint over for lease ``epoch``: older epochs can write no more.

        Returns the checkpoint as the new holder starts from, read after the
        fence went up, so it reflects every write of the previous holders.
        Raises ``FencedOut`` if a newer epoch got there first.
        """
        await self._set(name)  # the document exists with ``position`` and ``epoch``
        fields = {"epoch": epoch, "owner": owner}
        if not await self._docs.update_if(self._collection, name, fields, below={"epoch": epoch}):
            checkpoint = await self.load(name)
            if checkpoint.epoch != epoch:
                raise FencedOut(f"{name}: epoch {epoch} fenced out by {checkpoint.epoch}")
            return checkpoint
        return await self.load(name)

    async def advance(self, name: str, position: int, owner: str, epoch: int) -> bool:
        """Move ``name`` forward to ``position`` under lease ``epoch``.

        One conditional write (the hot path pays no extra round trip). False if
        it was already there or beyond; ``FencedOut`` if a newer epoch took over.
        """
        fields = {"position": position, "updated_at_ms": now_ms(), "owner": owner}
        moved = await self._docs.update_if(
            self._collection, name, fields, equal={"epoch": epoch}, below={"position": position}
        )
        if not moved:
            await self._check_epoch(name, epoch)
        return moved

    async def switch(self, name: str, position: int, target: str, epoch: int) -> None:
        """A rebuild's swap under lease ``epoch``: write to ``target`` from ``position`` on.

        Position and target change in one write, so a consumer taking over sees
        both or neither. Raises ``FencedOut`` if a newer epoch took over.
        """
        fields = {"position": position, "target": target, "updated_at_ms": now_ms()}
        if not await self._docs.update_if(self._collection, name, fields, equal={"epoch": epoch}):
            raise FencedOut(f"{name}: epoch {epoch} fenced out")

    async def report(
        self,
        name: str,
        state: str,
        error: str | None = None,
        error_position: int | None = None,
        *,
        epoch: int | None = None,
    ) -> None:
        """Record the active instance's state, visible to status reports in any process.

        A consumer reports under its lease ``epoch``: a holder that lost the
        lease reports nothing (``FencedOut``). Without ``epoch`` (tools, tests
        standing in for a consumer elsewhere) the write is unconditional.
        """
        stopped = now_ms() if error is not None else None
        fields = {
            "state": state,
            "error": error,
            "error_position": error_position,
            "stopped_at_ms": stopped,
        }
        if epoch is None:
            await self._set(name, **fields)
        elif not await self._docs.update_if(self._collection, name, fields, equal={"epoch": epoch}):
            raise FencedOut(f"{name}: epoch {epoch} fenced out")

    async def follow_target(self, checkpoint: Checkpoint, epoch: int) -> None:
        """Point the read-model alias at ``checkpoint.target``, under lease ``epoch``.

        A consumer taking over calls this before resolving its collection: a
        rebuild that died between its ``switch`` and its alias swap is finished
        here. A no-op for consumers without a target (never rebuilt).
        """
        if checkpoint.target is None:
            return
        if await self._docs.resolve(checkpoint.name, fresh=True) != checkpoint.target:
            await self._docs.swap(checkpoint.name, checkpoint.target, epoch=epoch)

    async def _check_epoch(self, name: str, epoch: int) -> None:
        current = (await self.load(name)).epoch
        if current != epoch:
            raise FencedOut(f"{name}: epoch {epoch} fenced out by {current}")

    async def request_retry(self, name: str) -> None:
        """Ask a consumer stopped on an error (in any process) to try again."""
        await self._set(name, retry_requested_ms=now_ms())

    async def pause(self, name: str, until_ms: int, rebuilding_since_ms: int) -> None:
        """Ask the live consumer to stand aside until ``until_ms`` (renewed by the rebuild)."""
        await self._set(name, pause_until_ms=until_ms, rebuilding_since_ms=rebuilding_since_ms)

    async def mark_rebuilding(self, name: str, since_ms: int | None) -> None:
        await self._set(name, rebuilding_since_ms=since_ms)

    async def unpause(self, name: str) -> None:
        await self._set(name, pause_until_ms=None, rebuilding_since_ms=None)

    async def _set(self, name: str, **fields: Any) -> None:
        # Every checkpoint document carries ``position`` and ``epoch`` so the
        # conditional writes above can match it.
        existing = await self._docs.get(self._collection, name)
        for required in ("position", "epoch"):
            if existing is None or required not in existing:
                fields.setdefault(required, 0)
        if fields:
            await self._docs.set_fields(self._collection, name, fields)


def _from_doc(name: str, doc: dict[str, Any] | None) -> Checkpoint:
    if doc is None:
        return Checkpoint(name)
    known = Checkpoint.__dataclass_fields__
    return Checkpoint(name, **{k: v for k, v in doc.items() if k in known and k != "name"})


# -- progress in this process --------------------------------------------------


class ProgressBoard:
    """The latest known position per consumer name, with waiters. One event loop."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._changed = asyncio.Event()

    def position(self, name: str) -> int | None:
        return self._positions.get(name)

    def advance(self, name: str, position: int) -> None:
        if position <= self._positions.get(name, -1):
            return
        self._positions[name] = position
        # Wake everyone waiting now; later waiters wait for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return after the next ``advance`` (of any consumer) or ``timeout`` seconds."""
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return


# -- status --------------------------------------------------------------------

RUNNING = "running"
STANDBY = "standby"
REBUILDING = "rebuilding"
STOPPED_ON_ERROR = "stopped_on_error"
STOPPED = "stopped"


@dataclass(frozen=True)
class ConsumerStatus:
    """One consumer's progress, as the CLI's status command and the ``projections`` query show it.

    ``lag_seconds`` is the age of its oldest unprocessed event.
    """

    name: str
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    state: str
    last_error: str | None = None
    error_position: int | None = None
    owner: str | None = None
    needs_attention: int = 0
    """Items the consumer parked for an operator (counted up to ``ATTENTION_CAP``)."""


ATTENTION_CAP = 10_000
AttentionCounter = Callable[[int], Awaitable[int]]
"""Counts a consumer's parked items, up to the cap it is given (a bounded read)."""


async def _lag_seconds(store: EventStore, checkpoint: int, head: int) -> float:
    """Seconds since the oldest event the consumer has not processed was recorded."""
    if checkpoint >= head:
        return 0.0
    pending = await store.read_all(checkpoint, 1)
    if not pending:
        return 0.0
    age = datetime.now(UTC) - pending[0].recorded_at
    return max(age.total_seconds(), 0.0)


async def status_at(
    store: EventStore,
    name: str,
    position: int,
    head: int,
    state: str,
    *,
    last_error: str | None = None,
    error_position: int | None = None,
    owner: str | None = None,
) -> ConsumerStatus:
    """``name``'s status at checkpoint ``position``, its lag measured against ``head``."""
    return ConsumerStatus(
        name=name,
        checkpoint=position,
        head=head,
        lag_events=max(head - position, 0),
        lag_seconds=await _lag_seconds(store, position, head),
        state=state,
        last_error=last_error,
        error_position=error_position,
        owner=owner,
    )


def rebuild_lease_name(name: str) -> str:
    """The lease a rebuild of consumer ``name`` holds for its whole run."""
    return f"rebuild:{name}"


def _durable_state(checkpoint: Checkpoint, lease_live: bool, rebuilding: bool) -> str:
    """The state as seen from outside the consumer's process."""
    if rebuilding:
        return REBUILDING
    if checkpoint.state == STOPPED_ON_ERROR and lease_live:
        return STOPPED_ON_ERROR
    return RUNNING if lease_live else STOPPED


class StatusReporter:
    """Status of the named consumers from checkpoints, leases and the store head.

    Built from durable state only, so it works in any process, also one that
    runs no consumers; a ``Consumer`` reports its own live status the same way.
    """

    def __init__(
        self,
        store: EventStore,
        checkpoints: CheckpointStore,
        leases: Leases,
        names: Sequence[str],
        attention: Mapping[str, AttentionCounter] | None = None,
    ) -> None:
        """``attention``: for consumers that park what they cannot finish (the transfer
        manager's NEEDS_ATTENTION transfers), how to count what is parked."""
        self._store = store
        self._checkpoints = checkpoints
        self._leases = leases
        self._names = list(names)
        self._attention = dict(attention or {})

    async def report(self) -> list[ConsumerStatus]:
        head = await self._store.head_position()
        checkpoints = await self._checkpoints.load_all(self._names)
        return [await self._one(checkpoints[name], head) for name in self._names]

    async def _one(self, checkpoint: Checkpoint, head: int) -> ConsumerStatus:
        # Liveness as the lease store's clock judges it, not this process's.
        holder = await self._leases.holder(checkpoint.name)
        live = holder is not None and holder.live
        rebuilder = await self._leases.holder(rebuild_lease_name(checkpoint.name))
        rebuilding = rebuilder is not None and rebuilder.live
        state = _durable_state(checkpoint, live, rebuilding)
        failed = state == STOPPED_ON_ERROR
        count = self._attention.get(checkpoint.name)
        status = await status_at(
            self._store,
            checkpoint.name,
            checkpoint.position,
            head,
            state,
            last_error=checkpoint.error if failed else None,
            error_position=checkpoint.error_position if failed else None,
            owner=holder.owner if live and holder is not None else None,
        )
        if count is None:
            return status
        return replace(status, needs_attention=await count(ATTENTION_CAP))


# -- read-your-writes ----------------------------------------------------------

MAX_TIMEOUT = 10.0


class ReadYourWrites:
    """Read-your-writes: wait, bounded, until the read side has caught up with a write.

    Two questions, both answered with a bool (reached within the timeout or
    not), never an exception on timeout:

    - ``until_processed(consumer, position)``: has consumer X handled every
      event up to global ``position``? (durable checkpoint, or in-process progress);
    - ``until_version(collection, doc_id, version)``: does read-model document Y
      reflect stream ``version`` (its ``version`` field) yet?

    In-process consumer progress wakes waiters at once (``ProgressBoard``);
    progress made by other processes is polled every ``poll_interval`` seconds.
    """

    def __init__(
        self,
        documents: DocumentStore,
        checkpoints: CheckpointStore,
        *,
        progress: ProgressBoard | None = None,
        poll_interval: float = 0.05,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self._docs = documents
        self._checkpoints = checkpoints
        self._progress = progress
        self._poll = poll_interval
        self._max_timeout = max_timeout

    async def until_processed(self, consumer: str, position: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Whether ``consumer`` processed ``position`` within ``timeout`` seconds."""

        async def reached() -> bool:
            local = self._progress.position(consumer) if self._progress is not None else None
            if local is not None and local >= position:
                return True
            return (await self._checkpoints.load(consumer)).position >= position

        return await self._wait(reached, timeout)

    async def until_all_processed(
        self,
        consumers: Sequence[str],
        position: int,
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Whether every one of ``consumers`` processed ``position`` within ``timeout``."""
        deadline = time.monotonic() + min(timeout, self._max_timeout)
        for consumer in consumers:
            if not await self.until_processed(consumer, position, deadline - time.monotonic()):
                return False
        return True

    async def until_version(
        self,
        collection: str,
        doc_id: str,
        version: int,
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Whether document ``doc_id`` of logical ``collection`` reached ``version``."""

        async def reached() -> bool:
            doc = await self._docs.get(await self._docs.resolve(collection), doc_id)
            found = doc.get("version") if doc is not None else None
            return isinstance(found, int) and found >= version

        return await self._wait(reached, timeout)

    async def _wait(self, reached: Callable[[], Awaitable[bool]], timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + max(min(timeout, self._max_timeout), 0.0)
        while True:
            if await reached():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pause = min(self._poll, remaining)
            if self._progress is not None:
                await self._progress.changed(pause)
            else:
                await asyncio.sleep(pause)
