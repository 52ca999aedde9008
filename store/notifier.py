"""In-process wake-up for readers of the global order.

Both event stores advance a ``HeadNotifier`` whenever positions are stamped in
this process, so consumers and live tails here wake at once instead of waiting
for their next poll. Positions stamped by other processes are only seen when
someone in this process observes them: the sequencer's loop does, and while it
runs it sets ``watch_bound``, the longest a position visible in the store can
stay unknown here. Readers then wait on the notifier alone and read the store
only when it moved, so an idle process reads nothing; without a watcher
(``watch_bound is None``) they poll the store themselves.
"""

from __future__ import annotations

import asyncio


class HeadNotifier:
    """The highest global position known in this process, with waiters.

    Must be used from one event loop; ``advance`` never blocks and never lowers
    the head.
    """

    def __init__(self, head: int = 0, *, watch_bound: float | None = None) -> None:
        self._head = head
        self._waiters: list[asyncio.Future[int]] = []
        # Seconds within which a position visible in the store reaches ``advance``:
        # 0 for a store that stamps every position in this process, the watcher's
        # bound while one runs, None when nobody keeps the head current.
        self.watch_bound = watch_bound

    @property
    def watched(self) -> bool:
        """Whether ``head`` is kept current, so a reader may wait without polling."""
        return self.watch_bound is not None

    @property
    def head(self) -> int:
        return self._head

    def advance(self, head: int) -> None:
        """Record that positions up to ``head`` exist and wake every waiter."""
        if head <= self._head:
            return
        self._head = head
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(head)

    async def wait_beyond(self, position: int, timeout: float) -> int:  # noqa: ASYNC109
        """Wait until the head exceeds ``position`` or ``timeout`` seconds pass.

        Returns the head as known then (which may still be ``<= position``).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._head <= position:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self._wait_once(remaining)
        return self._head

    async def _wait_once(self, seconds: float) -> None:
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            if not waiter.done():
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
