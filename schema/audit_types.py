"""GraphQL types of the admin side: the audit log's events and projection status."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from application.service import trace_id_of
from projections.checkpoints import ConsumerStatus
from store.protocol import RecordedEvent


@strawberry.type(description="Who and what caused an event's commit.")
class EventMetadata:
    command_id: str | None
    correlation_id: str | None
    causation_id: str | None
    actor: str | None
    trace_id: str | None = strawberry.field(
        description=(
            "The W3C trace id (32 hex digits) of the request that caused the commit; "
            "null when it carried none."
        )
    )


@strawberry.type(description="One stored event (the audit log).")
class Event:
    position: int | None = strawberry.field(description="Global position; null until sequenced.")
    stream_id: strawberry.ID
    stream_type: str
    version: int
    event_id: strawberry.ID
    type: str
    schema_version: int
    data: JSON
    recorded_at: datetime
    metadata: EventMetadata

    @classmethod
    def from_recorded(cls, event: RecordedEvent) -> Event:
        meta = event.metadata
        return cls(
            position=event.position,
            stream_id=strawberry.ID(event.stream_id),
            stream_type=event.stream_type,
            version=event.version,
            event_id=strawberry.ID(event.event_id),
            type=event.type,
            schema_version=event.schema_version,
            data=JSON(dict(event.data)),
            recorded_at=event.recorded_at,
            metadata=EventMetadata(
                command_id=meta.command_id,
                correlation_id=meta.correlation_id,
                causation_id=meta.causation_id,
                actor=meta.actor,
                trace_id=trace_id_of(meta.traceparent),
            ),
        )


@strawberry.type(description="A projection consumer's progress and health.")
class ProjectionStatus:
    name: str
    state: str = strawberry.field(
        description="running, standby, rebuilding, stopped_on_error or stopped."
    )
    checkpoint: int = strawberry.field(description="The last global position processed.")
    head: int = strawberry.field(description="The highest global position in the store.")
    lag_events: int
    lag_seconds: float
    last_error: str | None
    error_position: int | None
    owner: str | None = strawberry.field(description="The process holding the consumer's lease.")
    needs_attention: int = strawberry.field(
        description="Items this consumer parked for an operator (the transfer manager's "
        "NEEDS_ATTENTION transfers; `retryProjection` re-decides them), counted up to 10,000."
    )

    @classmethod
    def from_status(cls, status: ConsumerStatus) -> ProjectionStatus:
        """From ``projections.checkpoints.ConsumerStatus``."""
        return cls(
            name=status.name,
            state=status.state,
            checkpoint=status.checkpoint,
            head=status.head,
            lag_events=status.lag_events,
            lag_seconds=status.lag_seconds,
            last_error=status.last_error,
            error_position=status.error_position,
            owner=status.owner,
            needs_attention=status.needs_attention,
        )
