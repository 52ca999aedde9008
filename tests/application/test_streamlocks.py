"""Per-stream turns inside one process: FIFO, independent streams, nothing kept when idle."""

from __future__ import annotations

import asyncio

import pytest

from application.service import StreamLocks


async def test_one_holder_per_stream_in_arrival_order_and_no_entry_left() -> None:
    locks = StreamLocks()
    order: list[int] = []
    inside = 0

    async def worker(n: int) -> None:
        nonlocal inside
        turn = await locks.acquire("s")
        try:
            inside += 1
            assert inside == 1
            order.append(n)
            await asyncio.sleep(0)
            inside -= 1
        finally:
            locks.release("s", turn)

    await asyncio.gather(*(worker(n) for n in range(50)))

    assert order == list(range(50))
    assert len(locks) == 0


async def test_other_streams_do_not_wait() -> None:
    locks = StreamLocks()
    held = await locks.acquire("a")
    other = await asyncio.wait_for(locks.acquire("b"), timeout=1)
    assert len(locks) == 2
    locks.release("b", other)
    locks.release("a", held)
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_entry_and_blocks_nobody() -> None:
    locks = StreamLocks()
    held = await locks.acquire("s")
    waiter = asyncio.create_task(locks.acquire("s"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    locks.release("s", held)
    assert len(locks) == 0
    again = await asyncio.wait_for(locks.acquire("s"), timeout=1)
    locks.release("s", again)
    assert len(locks) == 0


async def test_many_streams_leave_nothing_behind() -> None:
    locks = StreamLocks()

    async def touch(stream: str) -> None:
        turn = await locks.acquire(stream)
        await asyncio.sleep(0)
        locks.release(stream, turn)

    await asyncio.gather(*(touch(f"s-{n % 300}") for n in range(3_000)))

    assert len(locks) == 0
