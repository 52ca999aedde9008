"""One command at a time per stream, in this process.

Commands to one stream that run concurrently in one process would otherwise
race each other through optimistic concurrency: all but one lose, catch up and
retry, and a hot stream can exhaust the retries of a command that asked for no
version. ``StreamLocks`` queues them instead (FIFO, ``asyncio.Lock``), so
optimistic retries remain only for races with other processes.

Holds no state for idle streams: an entry lives while its stream has a holder
or a waiter and is removed by the last one to leave, cancelled waiters
included. An uncontended acquire does not suspend.
"""

from __future__ import annotations

import asyncio


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # the holder and the waiters


class StreamLocks:
    """A FIFO lock per stream id, created on first use and dropped when idle."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Streams with a holder or a waiter right now."""
        return len(self._entries)

    async def acquire(self, stream_id: str) -> _Entry:
        """Wait for ``stream_id``'s turn; pass the result to ``release``."""
        entry = self._entries.get(stream_id)
        if entry is None:
            entry = self._entries[stream_id] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: leave the queue
            self._leave(stream_id, entry)
            raise
        return entry

    def release(self, stream_id: str, entry: _Entry) -> None:
        entry.lock.release()
        self._leave(stream_id, entry)

    def _leave(self, stream_id: str, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[stream_id]
