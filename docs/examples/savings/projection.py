"""Step 4 of docs/extending.md: the ``goals`` read model, its projector and its view.

``{_id: goal_id, owner, name, target, saved, status, version, position,
updated_at}``. Like every projector here it is idempotent: each write is
guarded by the stream ``version`` it reflects, so a redelivered batch is a
no-op; a batch's events for one goal merge into one write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.codec import EventRegistry
from projections.documents import DocumentStore, GuardedWrite, WriteBatch
from projections.projector import ChangePublisher, Target, change_note, iso, payload, position_of
from store.protocol import RecordedEvent

NAME = "goals"
INDEXES = [[("owner", 1)]]

FieldsOf = Callable[[dict[str, Any]], dict[str, Any]]
FIELDS: dict[str, FieldsOf] = {
    "GoalCreated": lambda d: {"owner": d["owner"], "name": d["name"], "target": d["target"],
                              "saved": 0, "status": "SAVING"},
    "MoneySavedTowardsGoal": lambda d: {"saved": d["saved"]},
    "GoalReached": lambda d: {"status": "REACHED"},
    "GoalAbandoned": lambda d: {"status": "ABANDONED"},
}  # fmt: skip


class GoalsProjector:
    """An ``EventHandler`` for the consumer runtime: ``name``, ``prepare``, ``handle_batch``."""

    name = NAME

    def __init__(
        self,
        documents: DocumentStore,
        registry: EventRegistry,
        *,
        hub: ChangePublisher | None = None,
        physical: str | None = None,
    ) -> None:
        self.target = Target(documents, NAME, INDEXES, physical=physical)
        self._registry = registry
        self._hub = hub

    async def prepare(self) -> None:
        await self.target.prepare()

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        batch = WriteBatch()
        for event in events:
            fields_of = FIELDS.get(event.type)
            if fields_of is None or event.stream_type != "goal":
                continue  # every consumer sees every event: skip the others' cheaply
            fields = fields_of(payload(self._registry, event))
            fields.update(version=event.version, position=position_of(event),
                          updated_at=iso(event.recorded_at))  # fmt: skip
            batch.add(GuardedWrite(event.stream_id, "version", event.version, fields))
        writes = batch.writes()
        await self.target.documents.apply(self.target.name, writes)
        if self._hub is not None:  # live subscriptions learn about the change
            for write in writes:
                note = change_note(write.doc_id, write.guard_value, write.fields["position"])
                self._hub.publish(f"goal:{write.doc_id}", note)


@dataclass(frozen=True)
class GoalRecord:
    id: str
    owner: str
    name: str
    target: int
    saved: int
    status: str
    version: int


class GoalsView:
    """What the API reads (never the raw collection): one goal by id."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def get(self, goal_id: str) -> GoalRecord | None:
        doc = await self._docs.get(await self._docs.resolve(NAME), goal_id)
        if doc is None:
            return None
        return GoalRecord(doc["_id"], doc["owner"], doc["name"], doc["target"], doc["saved"],
                          doc["status"], doc["version"])  # fmt: skip
