"""Writing snapshots off the command's critical path.

Snapshots are disposable copies of state: a failed save is logged and
forgotten (the next one is due N events later), never reported to the command.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from domain.aggregate import Decider
from store.protocol import Snapshot, SnapshotStore

log = logging.getLogger(__name__)


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
