"""Aggregate states for the Application Service: cached, current, or from the past.

Combines the per-process cache, the snapshot writer and the ``Rehydrator``.
Current states are cached; past states (time travel) never are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from application.cache import AggregateCache
from application.loading import AnyDecider, Rehydrator
from application.outcomes import HistoryEntry, Loaded
from application.snapshots import SnapshotWriter, snapshot_due
from domain.codec import EventRegistry
from store.protocol import EventStore, SnapshotStore


class Repository:
    """Loads aggregate states and remembers the latest one of each stream.

    ``snapshot_every`` 0 disables snapshots; ``cache_size`` 0 disables the cache.
    """

    def __init__(
        self,
        store: EventStore,
        snapshots: SnapshotStore,
        registry: EventRegistry,
        deciders: Iterable[AnyDecider],
        *,
        snapshot_every: int,
        cache_size: int,
    ) -> None:
        if snapshot_every < 0:
            raise ValueError("snapshot_every must be >= 0")
        self._store = store
        self._by_type = {d.stream_type: d for d in deciders}
        self._snapshot_every = snapshot_every
        self._loader = Rehydrator(store, snapshots, registry)
        self.cache = AggregateCache(cache_size)
        self.writer = SnapshotWriter(snapshots)

    def resolve(self, stream_type_or_decider: str | AnyDecider) -> AnyDecider:
        """The decider itself, or the one whose ``stream_type`` is given."""
        if not isinstance(stream_type_or_decider, str):
            return stream_type_or_decider
        decider = self._by_type.get(stream_type_or_decider)
        if decider is None:
            raise LookupError(f"no decider for stream type {stream_type_or_decider!r}")
        return decider

    def cached(self, decider: AnyDecider, stream_id: str) -> Loaded | None:
        """The cached state of the stream: a guess, possibly stale."""
        return self.cache.get((decider.stream_type, stream_id))

    async def current(
        self, decider: AnyDecider, stream_id: str, known: Loaded | None = None
    ) -> Loaded:
        """The stream's current state, cached afterwards.

        Starts from ``known`` (a state the caller already holds, possibly
        stale) or the cached entry, and reads only the events after it; else
        loads the latest usable snapshot and the events after that. A stale
        entry is thus replaced by its caught-up successor, never re-read whole.
        """
        start = known or self.cached(decider, stream_id)
        if start is not None:
            loaded, _ = await self._loader.catch_up(decider, stream_id, start)
        else:
            loaded, replayed = await self._loader.load(decider, stream_id)
            if self._snapshot_every and replayed >= self._snapshot_every:
                # No usable snapshot (lost, or of an old shape): write one now.
                self.writer.schedule(decider, stream_id, loaded.state, loaded.version)
        self.cache.put((decider.stream_type, stream_id), loaded.state, loaded.version)
        return loaded

    def committed(
        self,
        decider: AnyDecider,
        stream_id: str,
        before: Loaded,
        events: Sequence[Any],
        version: int,
    ) -> None:
        """Cache the state after a commit of ``events`` on ``before``; snapshot it if due."""
        state = before.state
        for event in events:
            state = decider.evolve(state, event)
        self.cache.put((decider.stream_type, stream_id), state, version)
        if snapshot_due(self._snapshot_every, before.version, version):
            self.writer.schedule(decider, stream_id, state, version)

    async def past(self, decider: AnyDecider, stream_id: str, version: int) -> Loaded:
        """The state at stream ``version`` (time travel), never cached.

        Starts from the cached state when it is not beyond ``version``, else
        from the latest usable snapshot at or below it.
        """
        cached = self.cached(decider, stream_id)
        if cached is not None and cached.version <= version:
            loaded, _ = await self._loader.catch_up(decider, stream_id, cached, version)
        else:
            loaded, _ = await self._loader.load(decider, stream_id, version)
        return loaded

    async def history(
        self, decider: AnyDecider, stream_id: str, to_version: int | None = None
    ) -> list[HistoryEntry]:
        """Every event of the stream (up to ``to_version``) with the state right after it."""
        return await self._loader.history(decider, stream_id, to_version)
