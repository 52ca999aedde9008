"""Watching consumers that run in other processes: lease holders, waits, settling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from projections.checkpoints import StatusReporter
from tests.wiring import CONSUMERS, World


async def holders(world: World) -> set[str | None]:
    """The owner of each consumer's unexpired lease (None: nobody holds it)."""
    found = set()
    for name in CONSUMERS:
        holder = await world.leases.holder(name)  # live as the lease store's clock says
        found.add(holder.owner if holder is not None and holder.live else None)
    return found


async def until(check: Any, timeout: float, what: str, poll: float = 0.05) -> None:  # noqa: ASYNC109
    """Until ``await check()`` is true; ``TimeoutError(what)`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(poll)


async def settled(world: World, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Every consumer (in whichever process) reached a head that stopped moving.

    On MongoDB no commit may wait for its position either: a command a process
    manager just appended counts in the head only once the sequencer stamped it,
    which on a busy machine can take longer than the head's quiet period.
    """
    reporter = StatusReporter(world.store, world.checkpoints, world.leases, list(CONSUMERS))
    deadline = time.monotonic() + timeout
    stable, last = 0, -1
    while stable < 4:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled: {await reporter.report()}")
        statuses = await reporter.report()
        assert all(s.state != "stopped_on_error" for s in statuses), statuses
        head = statuses[0].head
        done = all(s.checkpoint >= head for s in statuses) and head == last
        done = done and not await _unstamped_commits(world)
        stable, last = (stable + 1 if done else 0), head
        await asyncio.sleep(0.1)


async def _unstamped_commits(world: World) -> bool:
    pending, _ = await world.store.sequencing_backlog(1)
    return pending > 0
