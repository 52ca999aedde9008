"""Pieces every projector shares, and the descriptor a feature's read side exports.

A projector is an ``EventHandler`` (``projections.consumer``) that writes one
read-model collection. It writes to a *physical* collection: the one the
logical name points at when the projector becomes active, or a fixed one
given by a rebuild. ``ReadModelProjector`` holds what every projector keeps
(target, hub, registry); ``StreamDocumentsProjector`` is a whole projector for
one document per stream. ``relevant``, ``version_writes`` and ``publish_notes``
are the batch steps the projectors have in common.

A feature's projections module (``projections/accounts.py``) exports one
``ReadSide``: its consumers (``ConsumerSpec``: projectors and process managers),
its read views and its live topics (``LiveSpec``). ``ReadSides`` composes a list
of them into what the wiring needs: the consumer names, the handlers, projector
factories for rebuilds, the views, the live read-model sources and routing, the
needs-attention counters and the retry follow-ups. Nothing here knows a feature.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from application.service import CommandContext
from domain.codec import EventRegistry
from projections.consumer import EventHandler
from projections.documents import DocumentStore, GuardedWrite, SortKey
from projections.live import Loader, ReadModelSource
from store.protocol import EventStore, RecordedEvent


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


@functools.lru_cache(maxsize=4096)
def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: sortable as a string."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(value: Any) -> datetime:
    """A stored ISO-8601 string (or datetime) as an aware UTC datetime (``iso`` read back)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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
    name) and ``indexes``, implements ``handle_batch`` and may narrow
    ``accepts`` (which events ``handle_batch`` acts on; here: all); the base keeps the
    target collection, the hub that change notes go to and the event registry.
    """

    name: str
    indexes: Sequence[Sequence[SortKey]] = ()

    def __init__(
        self,
        documents: DocumentStore,
        *,
        registry: EventRegistry,
        hub: ChangePublisher | None = None,
        physical: str | None = None,
    ) -> None:
        self.target = Target(documents, self.name, self.indexes, physical=physical)
        self._hub = hub
        self._registry = registry

    async def prepare(self) -> None:
        await self.target.prepare()

    def accepts(self, event: RecordedEvent) -> bool:
        """Every event: a subclass that handles fewer names them (see ``EventHandler``)."""
        return True


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


# -- the read side of a feature ---------------------------------------------------------


class CommandSender(Protocol):
    """Where a process manager's commands go (``application.service.ApplicationService`` fits)."""

    async def handle(self, command: Any, context: CommandContext) -> Any: ...


AttentionCounter = Callable[[int], Awaitable[int]]
"""``(cap) -> how many items wait for an operator``, counted up to ``cap``."""

Followup = Callable[[], Awaitable[object]]
"""What an operator's retry of a consumer does besides resuming it."""


@dataclasses.dataclass(frozen=True)
class ConsumerDeps:
    """What building a consumer may need; ``sender`` only process managers use."""

    documents: DocumentStore
    store: EventStore
    registry: EventRegistry
    hub: ChangePublisher | None = None
    sender: CommandSender | None = None


@dataclasses.dataclass(frozen=True)
class ConsumerSpec:
    """One consumer of a feature.

    - ``build(deps, physical)``: the handler; ``physical`` is None for the live
      handler (it follows the logical collection) or the collection a rebuild
      writes.
    - ``read_model``: a projector (consistency waits for it; it can be
      rebuilt). False for a process manager: it sends commands through
      ``deps.sender``, is built only when a sender is given, and is never rebuilt
      (a rebuild would send its commands again).
    - ``attention(documents)``: counts what the consumer parked for an operator.
    - ``retry_followup(sender, documents)``: what an operator's retry of the
      consumer does besides resuming it.
    """

    name: str
    build: Callable[[ConsumerDeps, str | None], EventHandler]
    read_model: bool = True
    attention: Callable[[DocumentStore], AttentionCounter] | None = None
    retry_followup: Callable[[CommandSender, DocumentStore], Followup] | None = None


@dataclasses.dataclass(frozen=True)
class LiveSpec:
    """One kind of live read-model topic (``"<kind>:<key>"``, or ``"<kind>"`` alone).

    ``consumer`` writes the documents; ``load(documents)`` makes the loader that
    reads one (``key -> document | None``) through the feature's read view, so a
    rebuild's swap is followed; ``route(event)`` names the topics of this kind the
    event may change.
    """

    kind: str
    consumer: str
    load: Callable[[DocumentStore], Loader]
    route: Callable[[RecordedEvent], tuple[str, ...]]


def _no_views(documents: DocumentStore, max_page_size: int) -> tuple[object, ...]:
    return ()


@dataclasses.dataclass(frozen=True)
class ReadSide:
    """Everything a feature's projections module contributes.

    ``views(documents, max_page_size)`` builds the read views the API queries
    (one object per view class).
    """

    consumers: tuple[ConsumerSpec, ...] = ()
    views: Callable[[DocumentStore, int], tuple[object, ...]] = _no_views
    live: tuple[LiveSpec, ...] = ()


class ReadSides:
    """The read sides of every wired feature, composed. Names must be unique."""

    def __init__(self, sides: Iterable[ReadSide]) -> None:
        self.sides = tuple(sides)
        self._consumers = {c.name: c for side in self.sides for c in side.consumers}
        self._live = {spec.kind: spec for side in self.sides for spec in side.live}
        if len(self._consumers) != sum(len(side.consumers) for side in self.sides):
            raise ValueError("two read sides name the same consumer")
        if len(self._live) != sum(len(side.live) for side in self.sides):
            raise ValueError("two read sides name the same live topic kind")

    @property
    def consumers(self) -> tuple[str, ...]:
        """Every consumer: the read models, then the process managers."""
        return self.read_models + self.process_managers

    @property
    def read_models(self) -> tuple[str, ...]:
        return tuple(name for name, c in self._consumers.items() if c.read_model)

    @property
    def process_managers(self) -> tuple[str, ...]:
        return tuple(name for name, c in self._consumers.items() if not c.read_model)

    def handlers(
        self, deps: ConsumerDeps, names: Sequence[str] | None = None
    ) -> list[EventHandler]:
        """The live handlers named (default: all); process managers only with ``deps.sender``."""
        wanted = self.consumers if names is None else names
        return [
            spec.build(deps, None)
            for name in wanted
            if (spec := self._consumers.get(name)) is not None
            and (spec.read_model or deps.sender is not None)
        ]

    def factories(self, deps: ConsumerDeps) -> dict[str, Callable[[str], EventHandler]]:
        """For each read model: physical collection -> projector writing there (rebuilds)."""
        return {
            name: functools.partial(self._consumers[name].build, deps) for name in self.read_models
        }

    def views(self, documents: DocumentStore, max_page_size: int) -> tuple[object, ...]:
        return tuple(view for side in self.sides for view in side.views(documents, max_page_size))

    def live_sources(self, documents: DocumentStore) -> dict[str, ReadModelSource]:
        """Topic kind -> how to read its documents and which topics an event changes."""
        return {
            kind: ReadModelSource(spec.consumer, spec.load(documents), spec.route)
            for kind, spec in self._live.items()
        }

    def attention(self, documents: DocumentStore) -> dict[str, AttentionCounter]:
        return {
            name: spec.attention(documents)
            for name, spec in self._consumers.items()
            if spec.attention is not None
        }

    def followups(self, sender: CommandSender, documents: DocumentStore) -> dict[str, Followup]:
        return {
            name: spec.retry_followup(sender, documents)
            for name, spec in self._consumers.items()
            if spec.retry_followup is not None
        }
