"""Checks and load helpers shared by the sequencer and durability tests."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

from store.protocol import ConcurrencyError, EventStore, NewEvent, RecordedEvent


async def read_everything(store: EventStore, page: int = 500) -> list[RecordedEvent]:
    """Every sequenced event, page by page (bounded by the head read first)."""
    head = await store.head_position()
    events: list[RecordedEvent] = []
    while len(events) < head:
        after = events[-1].position or 0 if events else 0
        batch = await store.read_all(after, page)
        if not batch:
            break
        events.extend(batch)
    return events


def assert_global_order(events: list[RecordedEvent]) -> None:
    """Positions 1..N without holes, each event once, each stream in version order."""
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event.stream_id].append(event.version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"stream {stream} out of order: {seen}"


async def write_load(
    store: EventStore,
    writer: int,
    streams: list[str],
    *,
    commits: int,
    seconds: float,
    written: list[str],
) -> None:
    """Append ``commits`` commits of 1-3 events to shared ``streams``, retrying conflicts.

    Bounded by count and by ``seconds``; event ids of acknowledged commits go to ``written``.
    """
    rng = random.Random(writer)
    deadline = time.monotonic() + seconds
    done = 0
    while done < commits and time.monotonic() < deadline:
        stream = rng.choice(streams)
        version = await store.stream_version(stream)
        ids = [f"w{writer}-{done}-{i}" for i in range(rng.randint(1, 3))]
        try:
            await store.append(stream, "load", version, [NewEvent(i, "Loaded", {}) for i in ids])
        except ConcurrencyError:
            await asyncio.sleep(0)
            continue
        written.extend(ids)
        done += 1
