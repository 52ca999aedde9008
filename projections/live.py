"""The live services of one server process: the feed tail and read-model changes.

Every process tails the same global feed (``projections.feed``) and publishes
read-model changes for watched topics (``projections.live_read_models``), so a
subscriber on process B sees changes caused by a mutation on process A.
``Live`` is the facade ``schema.subscriptions`` uses; ``create_live`` wires it.

Topics and the change/source records live in ``projections.live_topics``,
the worker in ``projections.live_read_models``; the features' read sides say
where their documents come from (``projections.projector.ReadSides.live_sources``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from projections.checkpoints import CheckpointStore
from projections.feed import Feed
from projections.hub import Hub
from projections.live_read_models import LiveReadModels
from projections.live_topics import CheckpointReader, ReadModelChange, ReadModelSource
from projections.progress import ProgressBoard
from store.protocol import EventStore, RecordedEvent


class Live:
    """The live services one server process runs: the feed tail and read-model changes.

    ``runtime/bootstrap.py`` builds one, starts it in the lifespan and puts it in the
    GraphQL context (``context.live``); ``schema.subscriptions`` uses only
    ``events`` and ``changes``.
    """

    def __init__(self, hub: Hub, feed: Feed, read_models: LiveReadModels) -> None:
        self.hub = hub
        self.feed = feed
        self.read_models = read_models
        read_models.attach(feed)

    async def start(self) -> None:
        await self.read_models.start()
        await self.feed.start()

    async def stop(self) -> None:
        """Stop both loops and end every subscription (their iterators finish)."""
        await self.feed.stop()
        await self.read_models.stop()
        self.hub.close()

    def events(
        self,
        after: int,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
        owner: asyncio.Future[Any] | None = None,
    ) -> AsyncGenerator[RecordedEvent, None]:
        return self.feed.events(after, stream_id=stream_id, types=types, owner=owner)

    def changes(
        self, topic: str, *, owner: asyncio.Future[Any] | None = None
    ) -> AsyncGenerator[ReadModelChange, None]:
        return self.read_models.changes(topic, owner=owner)

    async def current(self, topic: str) -> ReadModelChange:
        return await self.read_models.current(topic)


def checkpoint_reader(
    checkpoints: CheckpointStore, progress: ProgressBoard | None = None
) -> CheckpointReader:
    """A consumer's position: in-process progress when it already reaches ``needed``
    (no database read), else the newer of it and the durable checkpoint."""

    async def read(name: str, needed: int) -> int:
        known = (progress.position(name) if progress is not None else None) or 0
        if known >= needed:
            return known
        return max(known, (await checkpoints.load(name)).position)

    return read


def create_live(
    store: EventStore,
    checkpoints: CheckpointStore,
    sources: Mapping[str, ReadModelSource],
    *,
    hub: Hub | None = None,
    progress: ProgressBoard | None = None,
    poll_interval: float = 0.05,
    queue_size: int = 1000,
    wait_timeout: float = 10.0,
) -> Live:
    """Wire the live services of one process (``runtime/bootstrap.py`` calls this).

    ``sources``: how to read each kind of read-model document and which topics an
    event changes (topic kind -> source). Pass the same ``hub`` the projectors
    publish their change notes to. The store's ``notifier`` wakes the feed.
    ``await live.start()`` after the consumers started; ``await live.stop()``
    before the store closes.
    """
    hub = hub or Hub()
    feed = Feed(
        store,
        hub,
        notifier=store.notifier,
        poll_interval=poll_interval,
        queue_size=queue_size,
    )
    read_models = LiveReadModels(
        hub,
        sources,
        checkpoint_reader(checkpoints, progress),
        poll_interval=poll_interval,
        wait_timeout=wait_timeout,
    )
    return Live(hub, feed, read_models)
