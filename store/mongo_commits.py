"""The shape of one commit document in the ``events`` collection (DESIGN.md section 2).

``{_id: "<stream_id>:<version>", stream_id, stream_type, version, events: [...],
metadata: {...}, recorded_at, position | pending}``: ``version`` is the first
event's version, ``position`` the first event's global position once stamped;
until then the commit carries ``pending`` (epoch ms at insert), the small marker
the sequencer's index is built on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from store.driver import Document
from store.protocol import AppendResult, CommitMetadata, NewEvent, RecordedEvent

PENDING = "pending"


def stream_filter(stream_id: str) -> Document:
    """Match one stream's documents so that the ``(stream_id, version)`` index serves it.

    ``$eq`` means the same as a bare value on every server. nx-27017 turns a
    bare string equality on a field without a single-field index into
    "equals, or is an array containing" (an ``OR`` that disables the SQLite
    expression index: a full scan per lookup), but ``$eq`` into a plain
    indexed ``=``; MongoDB plans both identically.
    """
    return {"stream_id": {"$eq": stream_id}}


def commit_id(stream_id: str, version: int) -> str:
    return f"{stream_id}:{version}"


def commit_document(
    *,
    stream_id: str,
    stream_type: str,
    version: int,
    events: Sequence[NewEvent],
    metadata: CommitMetadata,
    recorded_at: datetime,
    pending: int,
) -> Document:
    """A new, unsequenced commit document."""
    return {
        "_id": commit_id(stream_id, version),
        "stream_id": stream_id,
        "stream_type": stream_type,
        "version": version,
        "events": [
            {
                "event_id": event.event_id,
                "type": event.type,
                "schema_version": event.schema_version,
                "data": dict(event.data),
            }
            for event in events
        ],
        "metadata": {
            "command_id": metadata.command_id,
            "correlation_id": metadata.correlation_id,
            "causation_id": metadata.causation_id,
            "actor": metadata.actor,
        },
        "recorded_at": recorded_at,
        PENDING: pending,
    }


def last_version(doc: Document) -> int:
    """The version of the commit's last event."""
    return int(doc["version"]) + len(doc["events"]) - 1


def last_position(doc: Document) -> int | None:
    """The position of the commit's last event, None if unsequenced."""
    position = doc.get("position")
    return None if position is None else int(position) + len(doc["events"]) - 1


def recorded_events(doc: Document) -> tuple[RecordedEvent, ...]:
    """The commit's events, flattened, with ``recorded_at`` made tz-aware UTC.

    Builds the ``RecordedEvent`` values directly (as ``store.records.flatten``
    would): this runs for every event of every read, rebuilds included.
    """
    meta = doc.get("metadata") or {}
    recorded_at: datetime = doc["recorded_at"]
    if recorded_at.tzinfo is None:  # clients without tz_aware=True hand back naive UTC
        recorded_at = recorded_at.replace(tzinfo=UTC)
    recorded_at = recorded_at.astimezone(UTC)
    metadata = CommitMetadata(
        command_id=meta.get("command_id"),
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        actor=meta.get("actor"),
    )
    stream_id, stream_type = doc["stream_id"], doc["stream_type"]
    first_version = int(doc["version"])
    first_position: int | None = doc.get("position")
    return tuple(
        RecordedEvent(
            stream_id=stream_id,
            stream_type=stream_type,
            version=first_version + offset,
            event_id=e["event_id"],
            type=e["type"],
            schema_version=int(e["schema_version"]),
            data=e["data"],
            metadata=metadata,
            recorded_at=recorded_at,
            position=None if first_position is None else first_position + offset,
        )
        for offset, e in enumerate(doc["events"])
    )


def append_result(doc: Document) -> AppendResult:
    return AppendResult(doc["stream_id"], last_version(doc), recorded_events(doc))
