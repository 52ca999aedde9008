"""Turning decided domain events into one commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from application.context import CommandContext
from application.loading import AnyDecider
from domain.codec import EventRegistry
from store.protocol import AppendResult, CommitMetadata, EventStore, NewEvent


def metadata_of(context: CommandContext, fingerprint: str | None = None) -> CommitMetadata:
    """The commit metadata carried by ``context``, with the command's ``fingerprint``."""
    return CommitMetadata(
        command_id=context.command_id,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        actor=context.actor,
        fingerprint=fingerprint,
        traceparent=context.traceparent,
    )


class CommitWriter:
    """Encodes events (current schema versions, a fresh id each) and appends them."""

    def __init__(
        self, store: EventStore, registry: EventRegistry, event_ids: Callable[[], str]
    ) -> None:
        self._store = store
        self._registry = registry
        self._event_ids = event_ids

    async def append(
        self,
        decider: AnyDecider,
        stream_id: str,
        expected_version: int,
        events: Sequence[Any],
        context: CommandContext,
        fingerprint: str | None = None,
    ) -> AppendResult:
        """One commit at ``expected_version + 1``; the store's errors propagate."""
        new_events = [self._new_event(event) for event in events]
        metadata = metadata_of(context, fingerprint)
        return await self._store.append(
            stream_id, decider.stream_type, expected_version, new_events, metadata
        )

    def _new_event(self, event: Any) -> NewEvent:
        encoded = self._registry.encode(event)
        return NewEvent(self._event_ids(), encoded.type, encoded.data, encoded.schema_version)
