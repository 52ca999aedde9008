"""Pieces every projector shares: its target collection, event payloads, change notes.

A projector is an ``EventHandler`` (``projections.consumer``) that writes one
read-model collection. It writes to a *physical* collection: the one the
logical name points at when the projector becomes active, or a fixed one
given by a rebuild. ``ReadModelProjector`` holds what every projector keeps
(target, hub, registry); ``StreamDocumentsProjector`` is a whole projector for
one document per stream. ``relevant``, ``version_writes`` and ``publish_notes``
are the batch steps the projectors have in common.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from domain.bank import EVENTS
from domain.codec import EventRegistry
from projections.documents import DocumentStore, GuardedWrite, SortKey
from store.protocol import RecordedEvent


class ChangePublisher(Protocol):
    """Anything with the hub's ``publish`` (``projections.hub.Hub`` fits)."""

    def publish(self, topic: str, message: Any) -> Any: ...


FieldsOf = Callable[[RecordedEvent, dict[str, Any]], dict[str, Any]]
"""``(event, payload) -> fields`` an event sets on its stream's document."""


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


def relevant(
    events: Sequence[RecordedEvent],
    types: Container[str],
    stream_type: str,
    registry: EventRegistry,
) -> list[tuple[RecordedEvent, dict[str, Any]]]:
    """``(event, payload)`` for each event of ``types`` on a ``stream_type`` stream, in order."""
    return [
        (event, payload(registry, event))
        for event in events
        if event.type in types and event.stream_type == stream_type
    ]


def version_writes(
    events: Sequence[RecordedEvent],
    stream_type: str,
    fields: Mapping[str, FieldsOf],
    registry: EventRegistry,
) -> list[GuardedWrite]:
    """One write per stream document, guarded by stream version.

    Each relevant event sets ``fields[event.type](event, payload)``; a batch's
    events for one stream are merged into a single write (later fields win, as
    ``GuardedWrite.merged`` would), which also carries the ``version``,
    ``position`` and ``updated_at`` of the stream's last event in the batch.
    Those are computed once per document, not once per event: rebuilds hand
    over thousands of events at a time.
    """
    changes: dict[str, dict[str, Any]] = {}
    last: dict[str, RecordedEvent] = {}
    for event, data in relevant(events, fields, stream_type, registry):
        changes.setdefault(event.stream_id, {}).update(fields[event.type](event, data))
        last[event.stream_id] = event
    return [
        GuardedWrite(
            doc_id,
            "version",
            event.version,
            {
                **changes[doc_id],
                "version": event.version,
                "position": position_of(event),
                "updated_at": iso(event.recorded_at),
            },
        )
        for doc_id, event in last.items()
    ]


def publish_notes(hub: ChangePublisher | None, notes: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Publish each ``(topic, change note)``; nothing when there is no hub."""
    if hub is None:
        return
    for topic, note in notes:
        hub.publish(topic, note)


def write_notes(kind: str, writes: Iterable[GuardedWrite]) -> list[tuple[str, dict[str, Any]]]:
    """``("<kind>:<id>", note)`` for version-guarded writes (see ``version_writes``)."""
    return [
        (f"{kind}:{w.doc_id}", change_note(w.doc_id, w.guard_value, w.fields["position"]))
        for w in writes
    ]


class ReadModelProjector:
    """Base of the projectors that write one read-model collection.

    A subclass sets ``name`` (the logical collection, also its consumer's
    name) and ``indexes``, and implements ``handle_batch``; the base keeps the
    target collection, the hub that change notes go to and the event registry.
    """

    name: str
    indexes: Sequence[Sequence[SortKey]] = ()

    def __init__(
        self,
        documents: DocumentStore,
        *,
        hub: ChangePublisher | None = None,
        registry: EventRegistry | None = None,
        physical: str | None = None,
    ) -> None:
        self.target = Target(documents, self.name, self.indexes, physical=physical)
        self._hub = hub
        self._registry = registry or default_registry()

    async def prepare(self) -> None:
        await self.target.prepare()


class StreamDocumentsProjector(ReadModelProjector):
    """One document per stream of ``stream_type``, as of its stream version.

    A subclass also sets ``stream_type`` and ``fields`` (see ``version_writes``);
    each write's change note is published on ``<stream_type>:<id>``.
    """

    stream_type: str
    fields: Mapping[str, FieldsOf]

    def accepts(self, event: RecordedEvent) -> bool:
        """Whether ``handle_batch`` writes anything for ``event`` (see ``EventHandler``)."""
        return event.type in self.fields and event.stream_type == self.stream_type

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        writes = version_writes(events, self.stream_type, self.fields, self._registry)
        await self.target.documents.apply(self.target.name, writes)
        publish_notes(self._hub, write_notes(self.stream_type, writes))
