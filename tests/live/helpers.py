"""Small helpers shared by the live tests: appending plain events, reading with a bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


async def take(iterator: AsyncIterator[T], n: int, within: float = 5.0) -> list[T]:
    """The next ``n`` items, failing the test if they do not arrive in time."""
    items: list[T] = []
    async with asyncio.timeout(within):
        while len(items) < n:
            items.append(await anext(iterator))
    return items


def positions(events: list[Any]) -> list[int]:
    return [event.position for event in events]
