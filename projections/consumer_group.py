"""All the consumers of one process, started, stopped and reported together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from projections.status import ConsumerStatus

if TYPE_CHECKING:  # projections.consumer re-exports ConsumerGroup
    from projections.consumer import Consumer


class ConsumerGroup:
    """Starts, stops and reports every consumer of one process."""

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = {c.name: c for c in consumers}

    def __getitem__(self, name: str) -> Consumer:
        return self._consumers[name]

    @property
    def names(self) -> list[str]:
        return list(self._consumers)

    def start(self) -> None:
        for consumer in self._consumers.values():
            consumer.start()

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._consumers.values()))

    def retry(self, name: str) -> None:
        self._consumers[name].retry()

    async def statuses(self) -> list[ConsumerStatus]:
        return [await c.status() for c in self._consumers.values()]
