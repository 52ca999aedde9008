"""Durable per-consumer checkpoints and the control flags operators set on them.

One document per consumer in the ``checkpoints`` collection:
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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.documents import DocumentStore, FencedOut
from store.records import epoch_ms

COLLECTION = "checkpoints"

__all__ = ["COLLECTION", "Checkpoint", "CheckpointStore", "FencedOut", "now_ms"]


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
