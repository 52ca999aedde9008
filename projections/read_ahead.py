"""Reading the global order ahead of a slower writer, and handing it over in large chunks.

A rebuild is bound by two sequential loops on the database: reading events in
position order and writing read-model documents. ``ReadAhead`` runs the reads
in a task of their own, at most ``max_batches`` batches ahead, and ``take``
returns every batch read meanwhile as one chunk (up to ``max_events``). When
writing is the slower side the chunks grow, and since projectors write each
document once per ``handle_batch`` (merged guarded writes, one
``insert_new`` of statement lines), a larger chunk means fewer writes for the
same events.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from store.protocol import EventStore, RecordedEvent

_END: list[RecordedEvent] = []


class ReadAhead:
    """Events after position ``after``, read ``batch_size`` at a time; see the module."""

    def __init__(
        self, store: EventStore, after: int, batch_size: int, *, max_batches: int = 10
    ) -> None:
        self._store = store
        self._position = after
        self._batch_size = batch_size
        self._queue: asyncio.Queue[list[RecordedEvent]] = asyncio.Queue(maxsize=max_batches)
        self._task: asyncio.Task[None] | None = None
        self._error: Exception | None = None
        self._ended = False

    async def __aenter__(self) -> ReadAhead:
        self._task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            while events := await self._store.read_all(self._position, self._batch_size):
                self._position = events[-1].position or self._position
                await self._queue.put(events)
        except Exception as error:  # handed to the writer by take()
            self._error = error
        await self._queue.put(_END)

    async def take(self, max_events: int) -> list[RecordedEvent]:
        """The next events in order: one batch, plus the batches already read for as
        long as the chunk is below ``max_events``; ``[]`` once the head is reached.

        Raises the reader's error, if reading failed.
        """
        chunk: list[RecordedEvent] = []
        if self._ended:
            return chunk
        batch = await self._queue.get()
        while True:
            if batch is _END:
                self._ended = True
                if self._error is not None:
                    raise self._error
                return chunk
            chunk.extend(batch)
            if len(chunk) >= max_events or self._queue.empty():
                return chunk
            batch = self._queue.get_nowait()
