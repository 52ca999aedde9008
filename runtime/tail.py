"""``ledger events tail``: print the global event log, one line per event, and follow it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TextIO

from store.protocol import EventStore, RecordedEvent

log = logging.getLogger(__name__)
BATCH = 500


def format_event(event: RecordedEvent) -> str:
    """``<position> <recorded_at> <stream_id>@<version> <type> <data as JSON>``."""
    data = json.dumps(dict(event.data), sort_keys=True, separators=(",", ":"), default=str)
    moment = event.recorded_at.isoformat(timespec="milliseconds")
    return f"{event.position:>8} {moment} {event.stream_id}@{event.version} {event.type} {data}"


def event_json(event: RecordedEvent) -> str:
    return json.dumps(
        {
            "position": event.position,
            "recorded_at": event.recorded_at.isoformat(),
            "stream_id": event.stream_id,
            "stream_type": event.stream_type,
            "version": event.version,
            "type": event.type,
            "schema_version": event.schema_version,
            "data": dict(event.data),
            "command_id": event.metadata.command_id,
            "correlation_id": event.metadata.correlation_id,
        },
        default=str,
    )


async def follow_events(
    store: EventStore,
    out: TextIO,
    *,
    after: int | None = None,
    follow: bool = True,
    limit: int | None = None,
    as_json: bool = False,
    poll_seconds: float = 0.2,
    notices: TextIO | None = None,
) -> int:
    """Print events after ``after`` (default: the current head) in global order.

    Stops at the end of the log when ``follow`` is false, after ``limit``
    events when given, else runs until cancelled. Returns the events printed.
    Each time it reaches the end of the log and starts waiting, it says so
    once on ``notices`` (the CLI's stderr), so an operator knows it is alive.
    """
    position = await store.head_position() if after is None else max(after, 0)
    log.info("following events after position %s", position)
    printed = 0
    waiting = False
    while limit is None or printed < limit:
        wanted = BATCH if limit is None else min(BATCH, limit - printed)
        batch = await store.read_all(position, wanted)
        for event in batch:
            out.write((event_json(event) if as_json else format_event(event)) + "\n")
            position = event.position or position
        printed += len(batch)
        out.flush()
        if not batch:
            if not follow:
                break
            if notices is not None and not waiting:
                notices.write(f"waiting for new events after position {position} (Ctrl-C stops)\n")
                notices.flush()
            waiting = True
            await asyncio.sleep(poll_seconds)
        else:
            waiting = False
    return printed
