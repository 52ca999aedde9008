"""Rebuilding aggregate state from snapshots and events (the read half of the repository).

Stored events are decoded (and upcast) through the ``EventRegistry`` and
folded with the decider's ``evolve``. A snapshot is used only when it belongs
to the decider's stream type and snapshot schema version and decodes cleanly;
otherwise the next older snapshot is tried (a bounded number of times, e.g.
after a deploy that changed the snapshot schema and wrote a newer one), and
failing those the stream is replayed from its first event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from application.errors import StreamTypeMismatch
from application.outcomes import HistoryEntry, Loaded
from domain.aggregate import Decider
from domain.codec import EventRegistry
from store.protocol import EventStore, RecordedEvent, Snapshot, SnapshotStore

log = logging.getLogger(__name__)

AnyDecider = Decider[Any, Any, Any]

MAX_SNAPSHOT_FALLBACKS = 5
"""Snapshot lookups per load: the latest, then older ones while the newer are unusable."""


class Rehydrator:
    """Loads ``Loaded(state, version)`` for a decider's stream, current or as of a version."""

    def __init__(
        self, store: EventStore, snapshots: SnapshotStore, registry: EventRegistry
    ) -> None:
        self._store = store
        self._snapshots = snapshots
        self._registry = registry

    def decode(self, recorded: RecordedEvent) -> Any:
        """The domain event stored in ``recorded``, upgraded to its current schema."""
        return self._registry.decode(recorded.type, recorded.schema_version, recorded.data)

    def fold(self, decider: AnyDecider, loaded: Loaded, events: Sequence[RecordedEvent]) -> Loaded:
        """``loaded`` with ``events`` (the versions right after it) applied."""
        state, version = loaded.state, loaded.version
        for recorded in events:
            if recorded.stream_type != decider.stream_type:
                raise StreamTypeMismatch(
                    recorded.stream_id, decider.stream_type, recorded.stream_type
                )
            state = decider.evolve(state, self.decode(recorded))
            version = recorded.version
        return Loaded(state, version)

    async def snapshot(
        self, decider: AnyDecider, stream_id: str, max_version: int | None
    ) -> Loaded | None:
        """The latest usable snapshot at or below ``max_version``, if any.

        An unusable one (another schema version, undecodable state) is skipped
        for the next older one, at most ``MAX_SNAPSHOT_FALLBACKS`` lookups in
        all; after that, or when the store fails, the caller replays in full.
        """
        for _ in range(MAX_SNAPSHOT_FALLBACKS):
            try:
                found = await self._snapshots.latest(stream_id, max_version)
            except Exception:
                # Snapshots are disposable: an unreachable store means a full replay.
                log.warning("snapshot lookup for %s failed", stream_id, exc_info=True)
                return None
            if found is None:
                return None
            usable = _usable(decider, found)
            if usable is not None:
                return usable
            max_version = found.version - 1
            if max_version < 1:
                return None
        return None

    async def load(
        self, decider: AnyDecider, stream_id: str, to_version: int | None = None
    ) -> tuple[Loaded, int]:
        """State as of ``to_version`` (current if None) and how many events were replayed."""
        if to_version is not None and to_version <= 0:
            return Loaded(decider.initial_state(), 0), 0
        start = await self.snapshot(decider, stream_id, to_version)
        if start is None:
            start = Loaded(decider.initial_state(), 0)
        return await self.catch_up(decider, stream_id, start, to_version)

    async def catch_up(
        self, decider: AnyDecider, stream_id: str, loaded: Loaded, to_version: int | None = None
    ) -> tuple[Loaded, int]:
        """``loaded`` advanced by the stream's events after its version (up to ``to_version``)."""
        if to_version is not None and to_version <= loaded.version:
            return loaded, 0
        events = await self._store.read_stream(stream_id, loaded.version + 1, to_version)
        return self.fold(decider, loaded, events), len(events)

    async def history(
        self, decider: AnyDecider, stream_id: str, to_version: int | None = None
    ) -> list[HistoryEntry]:
        """Every event of the stream (up to ``to_version``) with the state right after it."""
        events = await self._store.read_stream(stream_id, 1, to_version)
        loaded = Loaded(decider.initial_state(), 0)
        entries: list[HistoryEntry] = []
        for recorded in events:
            loaded = self.fold(decider, loaded, (recorded,))
            entries.append(HistoryEntry(recorded, loaded.state))
        return entries


def _usable(decider: AnyDecider, found: Snapshot) -> Loaded | None:
    """``found`` decoded, or None if it does not fit the decider or does not decode."""
    if not _fits(decider, found):
        return None
    try:
        return Loaded(decider.from_snapshot(found.state), found.version)
    except Exception:
        log.warning(
            "unreadable snapshot of %s at %d ignored", found.stream_id, found.version, exc_info=True
        )
        return None


def _fits(decider: AnyDecider, found: Snapshot) -> bool:
    """Whether ``found`` is of the decider's stream type and snapshot schema (logged if not)."""
    if (found.stream_type, found.schema_version) == (decider.stream_type, decider.snapshot_version):
        return True
    log.info(
        "ignoring snapshot of %s at %d (type %s, schema %d)",
        found.stream_id,
        found.version,
        found.stream_type,
        found.schema_version,
    )
    return False
