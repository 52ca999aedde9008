"""Small helpers shared by the live tests: appending plain events, reading with a bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from store.protocol import EventStore, NewEvent

T = TypeVar("T")


async def append(store: EventStore, stream_id: str, n: int = 1, type_: str = "Ticked") -> int:
    """Append ``n`` one-event commits to ``stream_id``; returns the stream version."""
    version = await store.stream_version(stream_id)
    stream_type = stream_id.split("-", 1)[0]
    for _ in range(n):
        new = NewEvent(f"{stream_id}-{version + 1}", type_, {"n": version + 1})
        await store.append(stream_id, stream_type, version, [new])
        version += 1
    return version


async def append_commit(store: EventStore, stream_id: str, n: int) -> int:
    """Append ``n`` events to ``stream_id`` as ONE commit (they reach the feed together)."""
    version = await store.stream_version(stream_id)
    numbers = range(version + 1, version + n + 1)
    events = [NewEvent(f"{stream_id}-{i}", "Ticked", {"n": i}) for i in numbers]
    await store.append(stream_id, stream_id.split("-", 1)[0], version, events)
    return version + n


async def take(iterator: AsyncIterator[T], n: int, within: float = 5.0) -> list[T]:
    """The next ``n`` items, failing the test if they do not arrive in time."""
    items: list[T] = []
    async with asyncio.timeout(within):
        while len(items) < n:
            items.append(await anext(iterator))
    return items


def positions(events: list[Any]) -> list[int]:
    return [event.position for event in events]


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``condition()`` holds (things with no event to wait on)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
