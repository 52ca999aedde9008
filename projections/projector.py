"""Pieces every projector shares: its target collection, event payloads, change notes.

A projector is an ``EventHandler`` (``projections.consumer``) that writes one
read-model collection. It writes to a *physical* collection: the one the
logical name points at when the projector becomes active, or a fixed one
given by a rebuild.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from domain.bank import EVENTS
from domain.codec import EventRegistry
from projections.documents import DocumentStore, SortKey
from store.protocol import RecordedEvent


class ChangePublisher(Protocol):
    """Anything with the hub's ``publish`` (``projections.hub.Hub`` fits)."""

    def publish(self, topic: str, message: Any) -> Any: ...


def change_note(doc_id: str, version: int | None, position: int) -> dict[str, Any]:
    """The message published on a read-model change: which document, as of what."""
    return {"id": doc_id, "version": version, "position": position}


class Target:
    """The physical collection a projector writes to, and the indexes it needs."""

    def __init__(
        self,
        documents: DocumentStore,
        logical: str,
        indexes: Sequence[Sequence[SortKey]] = (),
        *,
        physical: str | None = None,
    ) -> None:
        self.documents = documents
        self.logical = logical
        self.indexes = [list(keys) for keys in indexes]
        self._fixed = physical
        self.name = physical or logical

    async def prepare(self) -> None:
        """Resolve the physical name afresh (a rebuild may have swapped it) and index it."""
        if self._fixed is None:
            self.name = await self.documents.resolve(self.logical, fresh=True)
        for keys in self.indexes:
            await self.documents.ensure_index(self.name, keys)


def payload(registry: EventRegistry, event: RecordedEvent) -> dict[str, Any]:
    """The event's data upgraded to the current schema version."""
    if not registry.knows(event.type):
        return dict(event.data)
    return registry.upcast(event.type, event.schema_version, event.data)


def default_registry() -> EventRegistry:
    return EVENTS


@functools.lru_cache(maxsize=4096)
def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: sortable as a string."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def position_of(event: RecordedEvent) -> int:
    if event.position is None:
        raise ValueError(f"event {event.event_id} has no global position")
    return event.position
