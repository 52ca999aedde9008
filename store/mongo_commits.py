"""The shape of one commit document in the ``events`` collection.

``{_id: "<stream_id>:<version>", stream_id, stream_type, version, events: [...],
metadata: {...}, recorded_at, position | pending}``: ``version`` is the first
event's version, ``position`` the first event's global position once stamped;
until then the commit carries ``pending`` (epoch ms at insert), the small marker
the sequencer's index is built on.

A command's rejection is kept in the same collection, under the same unique
``metadata.command_id`` key as commits, so one insert decides a command id's
outcome (``store.mongo_commands``). It is no stream's event:
``{_id = stream_id = "~rejection:<command_id>", stream_type: "rejection",
version: 0, events: [], metadata: {command_id, fingerprint}, rejection: {...},
recorded_at}`` has neither ``pending`` nor ``position`` (never sequenced, never
in ``read_all``), and its reserved stream id is no aggregate's (never in
``read_stream``, ``stream_version`` or ``version_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from store.driver import Document
from store.protocol import (
    AppendResult,
    CommandRecord,
    CommandRejection,
    CommitMetadata,
    NewEvent,
    RecordedEvent,
)

PENDING = "pending"
REJECTION = "rejection"
REJECTION_STREAM_PREFIX = "~rejection:"


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
    """A new, unsequenced commit document (``fingerprint``, ``traceparent`` only when given)."""
    doc: Document = {
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
    if metadata.fingerprint is not None:
        doc["metadata"]["fingerprint"] = metadata.fingerprint
    if metadata.traceparent is not None:
        doc["metadata"]["traceparent"] = metadata.traceparent
    return doc


def rejection_document(rejection: CommandRejection, recorded_at: datetime) -> Document:
    """``rejection`` as a document of the ``events`` collection (see the module's doc)."""
    reserved = REJECTION_STREAM_PREFIX + rejection.command_id
    return {
        "_id": reserved,
        "stream_id": reserved,
        "stream_type": REJECTION,
        "version": 0,
        "events": [],
        "metadata": {"command_id": rejection.command_id, "fingerprint": rejection.fingerprint},
        REJECTION: {
            "stream_id": rejection.stream_id,
            "code": rejection.code,
            "message": rejection.message,
            "details": dict(rejection.details),
        },
        "recorded_at": recorded_at,
    }


def is_rejection(doc: Document) -> bool:
    return REJECTION in doc


def rejection_of(doc: Document) -> CommandRejection:
    """The rejection stored by ``rejection_document``."""
    body = doc[REJECTION]
    return CommandRejection(
        command_id=doc["metadata"]["command_id"],
        stream_id=body["stream_id"],
        code=body["code"],
        message=body["message"],
        details=body.get("details") or {},
        fingerprint=doc["metadata"].get("fingerprint"),
    )


def command_record(doc: Document) -> CommandRecord:
    """What a document found by its command id records: a commit or a rejection."""
    return rejection_of(doc) if REJECTION in doc else append_result(doc)


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
        fingerprint=meta.get("fingerprint"),
        traceparent=meta.get("traceparent"),
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
