"""In-process wake-up for readers of the global order.

Both event stores advance a ``HeadNotifier`` whenever positions are stamped in
this process, so consumers and live tails here wake at once instead of waiting
for their next poll. Positions stamped by other processes are only seen when
someone in this process observes them (the sequencer's polling loop does).
"""

from __future__ import annotations

import asyncio


class HeadNotifier:
    """The highest global position known in this process, with waiters.

    Must be used from one event loop; ``advance`` never blocks and never lowers
    the head.
    """

    def __init__(self, head: int = 0) -> None:
        self._head = head
        self._waiters: list[asyncio.Future[int]] = []

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
