"""Aggregate states for the Application Service: cached, current, or from the past.

``Repository`` combines three parts:

- the per-process ``AggregateCache`` of current states (a guess that the
  append's optimistic concurrency check keeps honest);
- the ``Rehydrator``, which rebuilds states from snapshots and events: stored
  events are decoded (and upcast) through the ``EventRegistry`` and folded with
  the decider's ``evolve``. A snapshot is used only when it belongs to the
  decider's stream type and snapshot schema version and decodes cleanly;
  otherwise the next older snapshot is tried (a bounded number of times, e.g.
  after a deploy that changed the snapshot schema and wrote a newer one), and
  failing those the stream is replayed from its first event;
- the ``SnapshotWriter``, which saves snapshots off the command's critical path.
  Snapshots are disposable copies of state: a failed save is logged and
  forgotten (the next one is due N events later), never reported to the command.

Current states are cached; past states (time travel) never are.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from domain.aggregate import Decider, DomainError
from domain.codec import EventRegistry
from store.protocol import EventStore, RecordedEvent, Snapshot, SnapshotStore

log = logging.getLogger(__name__)

AnyDecider = Decider[Any, Any, Any]

MAX_SNAPSHOT_FALLBACKS = 5
"""Snapshot lookups per load: the latest, then older ones while the newer are unusable."""


@dataclass(frozen=True)
class Loaded:
    """An aggregate's state as of ``version`` (0: before its first event)."""

    state: Any
    version: int


class HistoryEntry(NamedTuple):
    """One stored event together with the aggregate's state right after it.

    A named pair, so ``for event, state in await service.history(...)`` works.
    """

    event: RecordedEvent
    state: Any


class StreamTypeMismatch(DomainError):
    """The stream id names an aggregate of another kind (a transfer id used as an account)."""

    code = "stream_type_mismatch"

    def __init__(
        self, stream_id: str, expected_type: str, actual_type: str, message: str | None = None
    ) -> None:
        super().__init__(
            message or f"stream {stream_id!r} is a {actual_type}, not a {expected_type}",
            stream_id=stream_id,
            expected_type=expected_type,
            actual_type=actual_type,
        )
        self.stream_id = stream_id
        self.expected_type = expected_type
        self.actual_type = actual_type


# -- the cache -----------------------------------------------------------------


CacheKey = tuple[str, str]  # (stream_type, stream_id)


class AggregateCache:
    """Least-recently-used map ``(stream_type, stream_id) -> Loaded``.

    ``capacity`` 0 disables caching. ``put`` never replaces an entry with an
    older version, so interleaved commands cannot move an entry backwards.
    States must be immutable values (deciders never mutate them).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("cache capacity must be >= 0")
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, Loaded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Loaded | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, state: Any, version: int) -> None:
        if self.capacity == 0:
            return
        current = self._entries.get(key)
        if current is not None and current.version > version:
            return
        self._entries[key] = Loaded(state, version)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def discard(self, key: CacheKey) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


# -- snapshots ------------------------------------------------------------------


def snapshot_due(every: int, old_version: int, new_version: int) -> bool:
    """Whether a commit from ``old_version`` to ``new_version`` crossed a multiple of ``every``."""
    return every > 0 and new_version // every > old_version // every


class SnapshotWriter:
    """Saves snapshots in background tasks it keeps track of.

    The tasks are held in a set until done (the event loop keeps only weak
    references). ``drain()`` waits for the pending ones; ``close()`` drains and
    refuses further work. A writer serves one event loop at a time: tasks of
    another loop cannot be awaited, so ``drain()`` forgets them (see there).
    """

    def __init__(self, snapshots: SnapshotStore) -> None:
        self._snapshots = snapshots
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.saved = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(
        self, decider: Decider[Any, Any, Any], stream_id: str, state: Any, version: int
    ) -> None:
        """Save ``state`` as of ``version`` in the background (no-op once closed)."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            self._save(decider, stream_id, state, version), name=f"snapshot {stream_id}@{version}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(
        self, decider: Decider[Any, Any, Any], stream_id: str, state: Any, version: int
    ) -> None:
        try:
            snapshot = Snapshot(
                stream_id=stream_id,
                stream_type=decider.stream_type,
                version=version,
                schema_version=decider.snapshot_version,
                state=dict(decider.to_snapshot(state)),
            )
            await self._snapshots.save(snapshot)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.warning("snapshot of %s at version %d failed", stream_id, version, exc_info=True)
        else:
            self.saved += 1

    async def drain(self) -> None:
        """Wait until every snapshot scheduled so far on this loop is saved or has failed.

        It waits on the unfinished tasks themselves and removes finished ones
        itself, never waiting for the done callbacks to empty the set: those
        run only when the loop gets control, and ``asyncio.gather`` of tasks
        that are all done (Python 3.12+) completes without yielding, so a
        "gather until the set is empty" loop would spin for ever.

        Tasks of another event loop are forgotten, not awaited: a loop that was
        closed with them unfinished will never run them, and a live one finishes
        them on its own. Unfinished ones are logged.
        """
        loop = asyncio.get_running_loop()
        while True:
            waiting: list[asyncio.Task[None]] = []
            for task in list(self._tasks):
                if task.done():
                    self._tasks.discard(task)
                elif task.get_loop() is not loop:
                    self._tasks.discard(task)
                    log.warning("%s belongs to another event loop; not waiting for it", task)
                else:
                    waiting.append(task)
            if not waiting:
                return
            await asyncio.wait(waiting)

    async def close(self) -> None:
        """Refuse new snapshots and wait for the pending ones."""
        self._closed = True
        await self.drain()


# -- loading --------------------------------------------------------------------


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


# -- the repository -------------------------------------------------------------


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
