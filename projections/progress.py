"""In-process signal of consumer progress, for read-your-writes waits.

Consumers running in this process call ``advance`` after each checkpoint
move; ``wait`` returns as soon as a consumer reached a position, without
polling. Progress made in other processes is seen through the durable
checkpoints (``projections.waiting`` polls them as well).

``wait_for_events`` is the other direction: a consumer waiting for the store
head to move past its position.
"""

from __future__ import annotations

import asyncio

from store.notifier import HeadNotifier


class ProgressBoard:
    """The latest known position per consumer name, with waiters. One event loop."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._changed = asyncio.Event()

    def position(self, name: str) -> int | None:
        return self._positions.get(name)

    def advance(self, name: str, position: int) -> None:
        if position <= self._positions.get(name, -1):
            return
        self._positions[name] = position
        # Wake everyone waiting now; later waiters wait for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return after the next ``advance`` (of any consumer) or ``timeout`` seconds."""
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return


async def wait_for_events(notifier: HeadNotifier | None, position: int, timeout: float) -> None:  # noqa: ASYNC109
    """Wait up to ``timeout`` seconds for events beyond ``position``.

    Woken by the store's in-process ``notifier`` when it has
    one; without one, or when it knows of positions not yet readable here, this
    polls instead.
    """
    if notifier is not None and notifier.head <= position:
        await notifier.wait_beyond(position, timeout)
    else:
        await asyncio.sleep(timeout if notifier is None else min(timeout, 0.02))
