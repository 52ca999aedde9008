"""Durable per-consumer checkpoints and the control flags operators set on them.

One document per consumer in the ``checkpoints`` collection:
``{_id: name, position, updated_at_ms, owner, state, error, error_position,
stopped_at_ms, retry_requested_ms, pause_until_ms, rebuilding_since_ms}``.
All times are epoch milliseconds (updated documents must not hold datetimes,
DESIGN.md section 8). ``position`` only moves forward except through
``force`` (a rebuild's swap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from projections.documents import DocumentStore, GuardedWrite

COLLECTION = "checkpoints"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Checkpoint:
    """A consumer's durable progress and the state its active instance reported."""

    name: str
    position: int = 0
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
        """Whether a rebuild asked the live consumer to stand aside at ``at_ms``."""
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

    async def advance(self, name: str, position: int, owner: str) -> bool:
        """Move ``name`` forward to ``position``; False if it was already there or beyond."""
        write = GuardedWrite(
            name,
            "position",
            position,
            {"position": position, "updated_at_ms": now_ms(), "owner": owner},
        )
        return await self._docs.apply(self._collection, [write]) == 1

    async def force(self, name: str, position: int) -> None:
        """Set ``position`` unconditionally (a rebuild swapping in its collection)."""
        await self._set(name, position=position, updated_at_ms=now_ms())

    async def report(
        self, name: str, state: str, error: str | None = None, error_position: int | None = None
    ) -> None:
        """Record the active instance's state, visible to status reports in any process."""
        stopped = now_ms() if error is not None else None
        await self._set(
            name, state=state, error=error, error_position=error_position, stopped_at_ms=stopped
        )

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
        # Every checkpoint document carries ``position`` so the guarded advance works.
        existing = await self._docs.get(self._collection, name)
        if existing is None or "position" not in existing:
            fields.setdefault("position", 0)
        await self._docs.set_fields(self._collection, name, fields)


def _from_doc(name: str, doc: dict[str, Any] | None) -> Checkpoint:
    if doc is None:
        return Checkpoint(name)
    known = Checkpoint.__dataclass_fields__
    return Checkpoint(name, **{k: v for k, v in doc.items() if k in known and k != "name"})
