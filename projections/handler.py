"""What a consumer drives, how it is tuned, and how one event is retried.

``projections.consumer`` re-exports ``EventHandler``, ``ConsumerSettings`` and
``new_owner_id``; import them from either module.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pymongo.errors import ConnectionFailure

from store.protocol import RecordedEvent


class EventHandler(Protocol):
    """What a consumer drives: a projector or a process manager."""

    name: str

    async def prepare(self) -> None:
        """Called each time this instance becomes the active one (resolve targets, indexes)."""
        ...

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Apply ``events`` (in position order) idempotently; raise to signal failure."""
        ...


@dataclass(frozen=True)
class ConsumerSettings:
    """Batch size, polling, lease TTL, and the poison-event retry schedule.

    ``transient_errors`` (lost connections) are retried forever and never
    stop a consumer; any other error is retried ``max_attempts`` times per
    event with exponential backoff, then stops it.
    """

    batch_size: int = 500
    poll_interval: float = 0.5
    lease_ttl: float = 10.0
    max_attempts: int = 5
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    transient_errors: tuple[type[BaseException], ...] = (ConnectionFailure, ConnectionError)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.backoff_initial * (2 ** (attempt - 1)), self.backoff_max))


def new_owner_id() -> str:
    """A lease owner id naming this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def attempt(
    handler: EventHandler, event: RecordedEvent, settings: ConsumerSettings
) -> BaseException | None:
    """Try ``event`` up to ``max_attempts`` times; the last error, or None on success.

    Transient errors propagate at once (the caller retries the whole cycle).
    """
    last: BaseException | None = None
    for number in range(1, settings.max_attempts + 1):
        try:
            await handler.handle_batch([event])
            return None
        except settings.transient_errors:
            raise
        except Exception as error:
            last = error
            if number < settings.max_attempts:
                await asyncio.sleep(settings.backoff(number))
    return last


def position_of(event: RecordedEvent) -> int:
    if event.position is None:
        raise ValueError(f"event {event.event_id} has no global position")
    return event.position


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
