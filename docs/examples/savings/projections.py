"""The savings feature's read side: the ``goals`` read model, its projector, its view, live topic.

``{_id: goal_id, owner, name, target, saved, status, version, position,
updated_at}``. Like every projector here it is idempotent: each write is
guarded by the stream ``version`` it reflects, so a redelivered batch is a
no-op; a batch's events for one goal merge into one write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.documents import DocumentStore
from projections.live import topic_for
from projections.projector import (
    ConsumerDeps,
    ConsumerSpec,
    FieldsOf,
    LiveSpec,
    ReadSide,
    StreamDocumentsProjector,
)
from store.protocol import RecordedEvent

NAME = "goals"
INDEXES = [[("owner", 1)]]


def _created(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"owner": data["owner"], "name": data["name"], "target": data["target"],
            "saved": 0, "status": "SAVING"}  # fmt: skip


FIELDS: dict[str, FieldsOf] = {
    "GoalCreated": _created,
    "MoneySavedTowardsGoal": lambda _, d: {"saved": d["saved"]},
    "GoalReached": lambda _, d: {"status": "REACHED"},
    "GoalAbandoned": lambda _, d: {"status": "ABANDONED"},
}
"""The fields each event sets on its goal's document (from the upcast payload)."""


class GoalsProjector(StreamDocumentsProjector):
    """The ``EventHandler`` the consumer runtime drives for the ``goals`` read model.

    ``StreamDocumentsProjector`` gives ``prepare``, ``accepts`` (the events of
    ``goal`` streams named in ``FIELDS``) and ``handle_batch``: one document per
    ``goal`` stream, each write guarded by the stream version
    (``version_writes``), and a change note on ``goal:<id>`` when given a hub.
    Built with the service's event registry and, for a rebuild, ``physical=``.
    """

    name = NAME
    indexes = INDEXES
    stream_type = "goal"
    fields = FIELDS


@dataclass(frozen=True)
class GoalRecord:
    id: str
    owner: str
    name: str
    target: int
    saved: int
    status: str
    version: int
    position: int | None = None


class GoalsView:
    """What the API reads (never the raw collection): one goal by id."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def get(self, goal_id: str) -> GoalRecord | None:
        doc = await self._docs.get(await self._docs.resolve(NAME), goal_id)
        if doc is None:
            return None
        return GoalRecord(doc["_id"], doc["owner"], doc["name"], doc["target"], doc["saved"],
                          doc["status"], doc["version"], doc.get("position"))  # fmt: skip


# -- the feature's read side, registered once ------------------------------------------


def _projector(deps: ConsumerDeps, physical: str | None) -> GoalsProjector:
    """The live projector (``physical`` None) or one writing a rebuild's collection."""
    return GoalsProjector(deps.documents, registry=deps.registry, hub=deps.hub, physical=physical)


def _route(event: RecordedEvent) -> tuple[str, ...]:
    """The live topic a goal's event changes: ``goal:<id>``."""
    return (topic_for("goal", event.stream_id),) if event.stream_type == "goal" else ()


READ_SIDE = ReadSide(
    consumers=(ConsumerSpec(NAME, _projector),),
    views=lambda documents, max_page_size: (GoalsView(documents),),
    live=(LiveSpec("goal", NAME, lambda documents: GoalsView(documents).get, _route),),
)
