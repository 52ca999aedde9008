"""An ``EventStore`` that hands every call to the store it wraps.

The base for proxies that observe one or two calls (``runtime/instrument.py``
measures appends; the test doubles count reads) without restating the whole
protocol: a subclass overrides only what it observes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from store.protocol import AppendResult, CommitMetadata, EventStore, NewEvent, RecordedEvent

NO_METADATA = CommitMetadata()


class ForwardingEventStore:
    """Delegates every ``EventStore`` method to ``inner``, unchanged."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        return await self.inner.append(stream_id, stream_type, expected_version, events, metadata)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        return await self.inner.read_stream(stream_id, from_version, to_version)

    async def stream_version(self, stream_id: str) -> int:
        return await self.inner.stream_version(stream_id)

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        return await self.inner.version_at(stream_id, moment)

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        return await self.inner.read_all(after_position, limit, stream_id=stream_id, types=types)

    async def head_position(self) -> int:
        return await self.inner.head_position()

    async def sequence(self) -> int:
        return await self.inner.sequence()

    async def find_command(self, command_id: str) -> AppendResult | None:
        return await self.inner.find_command(command_id)
