"""Given/then specs for the read side: ``await given(*events).project(build)``.

The read-side counterpart of ``tests.domain.gwt``. ``given(*events)`` is a
history: each event is appended as its own commit to a real in-memory event
store whose clock ticks one second per commit from ``T0``, so the event at
global position ``n`` was recorded at ``at(n)``. A domain event's stream is
named by its first field (``account_id`` -> an ``account`` stream), which fits
every aggregate here; ``Stored`` gives an event in a stored shape no current
class writes (an older schema version).

- ``project(build)`` runs the real projector that ``build`` makes against an
  in-memory document store, delivering the recorded events in the batches that
  ``deliver`` cuts (``at_once`` by default; ``REDELIVERIES`` and
  ``newest_first`` model a crashed consumer and out-of-order delivery), and
  returns a ``Projected`` to assert on: ``then_document``,
  ``then_no_document``, ``then_ids``, ``then_published``.
- ``then_idempotent(build)`` projects the history at once and with every
  redelivery, asserts the same documents each time, and returns the first.
- ``react(build)`` runs a process manager with a command sender that records
  what it is sent (and refuses the command types named in ``refuse``), and
  returns a ``Reacted``: ``then_commands``, ``then_no_commands``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from application.service import CommandContext
from domain.accounts import DOMAIN as ACCOUNTS
from domain.aggregate import DomainError
from domain.codec import EventRegistry, build_registry
from domain.transfers import DOMAIN as TRANSFERS
from projections.consumer import EventHandler
from projections.documents import Document, DocumentStore, InMemoryDocumentStore, Query
from projections.projector import iso
from store.memory import InMemoryEventStore
from store.protocol import EventStore, NewEvent, RecordedEvent

BANK_EVENTS = build_registry((ACCOUNTS, TRANSFERS))
"""The registry of the bank's events, the default of ``given``."""

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""When the first event of every spec history was recorded."""


def at(position: int) -> str:
    """The stored ``recorded_at`` (ISO string) of the event at global ``position``."""
    return iso(T0 + timedelta(seconds=position - 1))


@dataclasses.dataclass(frozen=True)
class Stored:
    """An event given in its stored shape (e.g. an older ``schema_version``)."""

    stream_id: str
    stream_type: str
    type: str
    data: Mapping[str, Any]
    schema_version: int = 1


Delivery = Callable[[list[RecordedEvent]], list[list[RecordedEvent]]]
"""The recorded history -> the batches a consumer hands to the handler, in order."""


def at_once(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    return [events]


def one_by_one(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    return [[event] for event in events]


def twice(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """The whole history again, as after a crash before the checkpoint moved."""
    return [events, events]


def overlapping(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """Windows of three moving by two (each event in one or two), then everything."""
    return [events[i : i + 3] for i in range(0, len(events), 2)] + [events]


def newest_first(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """One event per batch, the last first: the guards must keep the newest state."""
    return [[event] for event in reversed(events)]


REDELIVERIES: tuple[Delivery, ...] = (one_by_one, twice, overlapping)


@dataclasses.dataclass
class Recorder:
    """A ``ChangePublisher`` keeping every ``(topic, message)`` it is given."""

    published: list[tuple[str, Any]] = dataclasses.field(default_factory=list)

    def publish(self, topic: str, message: Any) -> None:
        self.published.append((topic, message))


@dataclasses.dataclass(frozen=True)
class Deps:
    """What a projector may be built from."""

    documents: DocumentStore
    store: EventStore
    hub: Recorder
    registry: EventRegistry


Build = Callable[[Deps], EventHandler]


@dataclasses.dataclass
class Projected:
    """The documents (every collection the projector wrote) and the notes it published."""

    collections: dict[str, list[Document]]
    published: list[tuple[str, Any]]

    def documents(self, collection: str) -> dict[str, Document]:
        return {doc["_id"]: doc for doc in self.collections.get(collection, [])}

    def then_document(self, collection: str, doc_id: str, expected: Mapping[str, Any]) -> Projected:
        """Assert the exact document ``doc_id`` (every field but ``_id``)."""
        doc = self.documents(collection).get(doc_id)
        assert doc is not None, f"no document {doc_id!r} in {collection!r}: {self.collections}"
        assert {k: v for k, v in doc.items() if k != "_id"} == dict(expected)
        return self

    def then_no_document(self, collection: str, doc_id: str) -> Projected:
        assert doc_id not in self.documents(collection), self.documents(collection)[doc_id]
        return self

    def then_ids(self, collection: str, *doc_ids: str) -> Projected:
        """Assert exactly these documents exist in ``collection`` (any order)."""
        assert sorted(self.documents(collection)) == sorted(doc_ids)
        return self

    def then_published(self, *notes: tuple[str, Any]) -> Projected:
        """Assert the exact ``(topic, note)`` messages published, in order."""
        assert self.published == list(notes)
        return self


@dataclasses.dataclass(frozen=True)
class Sent:
    """A command the process manager sent, and the context it sent it with."""

    command: Any
    context: CommandContext


class RecordingSender:
    """A ``CommandSender`` that records commands and refuses the types in ``refuse``."""

    def __init__(self, refuse: Mapping[type, DomainError]) -> None:
        self._refuse = refuse
        self.sent: list[Sent] = []

    async def handle(self, command: Any, context: CommandContext) -> None:
        self.sent.append(Sent(command, context))
        error = self._refuse.get(type(command))
        if error is not None:
            raise error


BuildManager = Callable[[RecordingSender, EventStore, EventRegistry], EventHandler]


@dataclasses.dataclass
class Reacted:
    """What a process manager sent, and the history it reacted to."""

    sent: list[Sent]
    events: list[RecordedEvent]

    @property
    def commands(self) -> list[Any]:
        return [sent.command for sent in self.sent]

    def then_commands(self, *expected: Any) -> Reacted:
        """Assert the exact commands sent, in order."""
        assert self.commands == list(expected)
        return self

    def then_no_commands(self) -> Reacted:
        return self.then_commands()


class Given:
    def __init__(self, events: Sequence[Any], registry: EventRegistry) -> None:
        self.events = tuple(events)
        self.registry = registry

    async def history(self) -> tuple[InMemoryEventStore, list[RecordedEvent]]:
        """A store holding the events (one commit each) and the events as recorded."""
        ticks = (T0 + timedelta(seconds=n) for n in itertools.count())
        store = InMemoryEventStore(clock=lambda: next(ticks))
        for number, event in enumerate(self.events, start=1):
            stream_id, stream_type, new = self._new_event(event, f"evt-{number}")
            version = await store.stream_version(stream_id)
            await store.append(stream_id, stream_type, version, [new])
        return store, await store.read_all(0, len(self.events) + 1)

    def _new_event(self, event: Any, event_id: str) -> tuple[str, str, NewEvent]:
        if isinstance(event, Stored):
            new = NewEvent(event_id, event.type, event.data, event.schema_version)
            return event.stream_id, event.stream_type, new
        first = dataclasses.fields(event)[0].name
        stream_type = first.removesuffix("_id")
        encoded = self.registry.encode(event)
        new = NewEvent(event_id, encoded.type, encoded.data, encoded.schema_version)
        return getattr(event, first), stream_type, new

    async def project(self, build: Build, *, deliver: Delivery = at_once) -> Projected:
        store, events = await self.history()
        documents = InMemoryDocumentStore()
        hub = Recorder()
        handler = build(Deps(documents, store, hub, self.registry))
        await handler.prepare()
        for batch in deliver(events):
            await handler.handle_batch(batch)
        collections = {
            name: await documents.find(name, Query()) for name in documents.collection_names()
        }
        return Projected(collections, hub.published)

    async def then_idempotent(self, build: Build) -> Projected:
        """Project at once and with each of ``REDELIVERIES``: the same documents each time."""
        once = await self.project(build)
        for deliver in REDELIVERIES:
            again = await self.project(build, deliver=deliver)
            assert again.collections == once.collections, deliver.__name__
        return once

    async def react(
        self,
        build: BuildManager,
        *,
        deliver: Delivery = at_once,
        refuse: Mapping[type, DomainError] | None = None,
    ) -> Reacted:
        store, events = await self.history()
        sender = RecordingSender(refuse or {})
        handler = build(sender, store, self.registry)
        await handler.prepare()
        for batch in deliver(events):
            await handler.handle_batch(batch)
        return Reacted(sender.sent, events)


def given(*events: Any, registry: EventRegistry = BANK_EVENTS) -> Given:
    """A history of ``events`` (domain events or ``Stored``), in global order."""
    return Given(events, registry)
