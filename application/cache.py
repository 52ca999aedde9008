"""A bounded, per-process LRU of aggregate states.

An entry is a *guess* of the stream's current state: the Application Service
decides against it and appends at its version; if another process wrote in
between, the append fails with a concurrency error and the entry is caught up
from the store. So a stale entry costs one retry, never a wrong decision.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from application.outcomes import Loaded

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
