"""Read-your-writes: wait, bounded, until the read side has caught up with a write.

Two questions, both answered with a bool (reached within the timeout or not),
never an exception on timeout:

- ``until_processed(consumer, position)``: has consumer X handled every event
  up to global ``position``? (durable checkpoint, or in-process progress);
- ``until_version(collection, doc_id, version)``: does read-model document Y
  reflect stream ``version`` (its ``version`` field) yet?

In-process consumer progress wakes waiters at once (``ProgressBoard``); progress
made by other processes is polled every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from projections.checkpoints import CheckpointStore
from projections.documents import DocumentStore
from projections.progress import ProgressBoard

MAX_TIMEOUT = 10.0


class ReadYourWrites:
    """Bounded waits for consumers and read-model documents; see the module docstring."""

    def __init__(
        self,
        documents: DocumentStore,
        checkpoints: CheckpointStore,
        *,
        progress: ProgressBoard | None = None,
        poll_interval: float = 0.05,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self._docs = documents
        self._checkpoints = checkpoints
        self._progress = progress
        self._poll = poll_interval
        self._max_timeout = max_timeout

    async def until_processed(self, consumer: str, position: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Whether ``consumer`` processed ``position`` within ``timeout`` seconds."""

        async def reached() -> bool:
            local = self._progress.position(consumer) if self._progress is not None else None
            if local is not None and local >= position:
                return True
            return (await self._checkpoints.load(consumer)).position >= position

        return await self._wait(reached, timeout)

    async def until_all_processed(
        self,
        consumers: Sequence[str],
        position: int,
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Whether every one of ``consumers`` processed ``position`` within ``timeout``."""
        deadline = time.monotonic() + min(timeout, self._max_timeout)
        for consumer in consumers:
            if not await self.until_processed(consumer, position, deadline - time.monotonic()):
                return False
        return True

    async def until_version(
        self,
        collection: str,
        doc_id: str,
        version: int,
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Whether document ``doc_id`` of logical ``collection`` reached ``version``."""

        async def reached() -> bool:
            doc = await self._docs.get(await self._docs.resolve(collection), doc_id)
            found = doc.get("version") if doc is not None else None
            return isinstance(found, int) and found >= version

        return await self._wait(reached, timeout)

    async def _wait(self, reached: Callable[[], Awaitable[bool]], timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + max(min(timeout, self._max_timeout), 0.0)
        while True:
            if await reached():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pause = min(self._poll, remaining)
            if self._progress is not None:
                await self._progress.changed(pause)
            else:
                await asyncio.sleep(pause)
