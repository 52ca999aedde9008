"""Live read-model change streams that work across server processes (the worker).

Every process tails the same global feed (``projections.feed``), so a
subscriber on process B sees changes caused by a mutation on process A. For
each event the tail sees, ``LiveReadModels`` works out which read-model
documents it affects (each source's ``route``), and only for topics somebody watches:

1. remembers the highest affecting position per topic (coalesced: a burst of
   100 deposits to one account costs one read, not 100);
2. waits, bounded, until the projector that owns the document has passed that
   position (its checkpoint; one checkpoint read per poll tick serves every
   pending topic; a change note a projector in this process published on the
   topic wakes it at once);
3. reads the document once through its ``ReadModelSource`` and publishes a
   ``ReadModelChange`` (document + version + position) to ``live:<topic>``.

Topics: ``"account:<id>"``, ``"transfer:<id>"``, ``"ledger"``. Projectors
publish change notes ``{id, version, position}`` on the topic itself;
documents go to ``live_topic(topic)``, so a note never displaces a document
in a subscriber's queue. Subscribers (``changes(topic)``) are latest-only: a
slow one skips to the newest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from projections.feed import Feed
from projections.hub import Hub
from projections.live_topics import (
    LIVE_PREFIX,
    CheckpointReader,
    ReadModelChange,
    ReadModelSource,
    describe,
    live_topic,
    split_topic,
)
from projections.subscription import position_of
from store.protocol import RecordedEvent

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    position: int
    since: float


class LiveReadModels:
    """Publishes read-model changes for watched topics; see the module docstring.

    ``start()``/``stop()`` run the worker; the feed calls ``on_batch``. Work
    that waits longer than ``wait_timeout`` for a checkpoint is published with
    whatever the document holds then (and logged), never left pending.
    """

    def __init__(
        self,
        hub: Hub,
        sources: Mapping[str, ReadModelSource],
        checkpoint: CheckpointReader,
        *,
        poll_interval: float = 0.05,
        wait_timeout: float = 10.0,
    ) -> None:
        self.hub = hub
        self.sources = dict(sources)
        self.checkpoint = checkpoint
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self._pending: dict[str, _Pending] = {}
        self._seen = 0  # the last feed position on_batch saw
        self._noted: dict[str, int] = {}  # in-process projector notes per topic
        self._published: dict[str, ReadModelChange] = {}
        self._loading: dict[str, asyncio.Future[ReadModelChange]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Topics with a ``live:`` subscriber (kept by ``_on_topic_change``): asked per feed
        # event and change note, mostly "no" under load; cheaper than asking the hub.
        self._watching = {
            t.removeprefix(LIVE_PREFIX) for t in hub.topics() if t.startswith(LIVE_PREFIX)
        }
        hub.on_topic_change(self._on_topic_change)
        hub.add_observer(self._on_publish)

    def attach(self, feed: Feed) -> None:
        feed.add_listener(self.on_batch)

    @property
    def pending_topics(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-read-models")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def on_batch(self, batch: Sequence[RecordedEvent]) -> None:
        """Note the topics a batch of feed events affects (watched ones only)."""
        if batch:  # in position order: the last event is the highest
            last = batch[-1].position
            assert last is not None
            self._seen = max(self._seen, last)
        if self._watching:
            now = asyncio.get_running_loop().time()
            for event in batch:
                assert event.position is not None
                for source in self.sources.values():
                    for topic in source.route(event):
                        if topic in self._watching:
                            self._note_pending(topic, event.position, now)
        if self._pending:
            self._wake.set()

    def _note_pending(self, topic: str, position: int, now: float) -> None:
        pending = self._pending.get(topic)
        if pending is None:
            self._pending[topic] = _Pending(position, now)
        else:
            pending.position = max(pending.position, position)

    async def current(self, topic: str) -> ReadModelChange:
        """The document behind ``topic`` now, for a subscriber already subscribed to it.

        Served from the last published change when nothing is pending. Many
        subscribers arriving together share one read; a read that started
        before this subscriber subscribed may miss a change published since,
        so the newer of the read and the last published change is returned.
        """
        cached = self._published.get(topic)
        if cached is not None and topic not in self._pending:
            return cached
        change = await self._shared_load(topic)
        latest = self._published.get(topic)
        return latest if latest is not None and latest.position > change.position else change

    async def _shared_load(self, topic: str) -> ReadModelChange:
        task = self._loading.get(topic)
        if task is None:
            task = asyncio.ensure_future(self._load(topic))
            self._loading[topic] = task
            task.add_done_callback(lambda done: self._loaded(topic, done))
        # Shielded: one subscriber giving up must not cancel the read for the others.
        return await asyncio.shield(task)

    def _loaded(self, topic: str, task: asyncio.Future[ReadModelChange]) -> None:
        if self._loading.get(topic) is task:
            del self._loading[topic]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away

    async def changes(
        self, topic: str, *, owner: asyncio.Future[Any] | None = None
    ) -> AsyncGenerator[ReadModelChange, None]:
        """The current document, then each newer one (latest-only when slow).

        ``owner``: the task reading this stream (see ``Subscription.bind``).
        """
        newly_watched = not self._watched(topic)
        subscription = self.hub.subscribe(live_topic(topic), latest_only=True, owner=owner)
        seen = self._seen  # later feed events for the topic are noted by on_batch
        try:
            change = await self.current(topic)
            if newly_watched and change.position < seen:
                self._follow_up(topic, seen)
            last = change.position
            yield change
            async for message in subscription:
                if isinstance(message, ReadModelChange) and message.position > last:
                    last = message.position
                    yield message
        finally:
            subscription.close()

    def _follow_up(self, topic: str, seen: int) -> None:
        """Re-read ``topic`` once its projector has passed feed position ``seen``.

        The feed may have passed events for a topic nobody watched then whose
        projector had not written them when the first subscriber read the
        document (say, an account opened just before it subscribed); without
        this, that subscriber would wait for the topic's next event.
        """
        self._note_pending(topic, seen, asyncio.get_running_loop().time())
        self._wake.set()

    async def _load(self, topic: str) -> ReadModelChange:
        kind, key = split_topic(topic)
        document = await self.sources[kind].load(key)
        version, position = describe(document)
        return ReadModelChange(topic, document, version, position)

    def _watched(self, topic: str) -> bool:
        return topic in self._watching

    def _on_topic_change(self, hub_topic: str, watched: bool) -> None:
        topic = hub_topic.removeprefix(LIVE_PREFIX)
        if topic == hub_topic:
            return
        if watched:
            self._watching.add(topic)
            return
        self._watching.discard(topic)
        self._pending.pop(topic, None)
        self._noted.pop(topic, None)
        self._published.pop(topic, None)

    def _on_publish(self, topic: str, message: Any) -> None:
        # Watched first: it is the cheap test that fails for nearly every message.
        if topic not in self._watching or isinstance(message, ReadModelChange):
            return
        position = position_of(message)
        if position is not None:  # bounded by watched topics
            self._noted[topic] = max(self._noted.get(topic, 0), position)
            self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._step()
            except Exception:  # a database hiccup: keep the work, retry next tick
                log.exception("live read-model step failed")
            if self._pending:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _step(self) -> None:
        checkpoints = await self._checkpoints()
        now = asyncio.get_running_loop().time()
        for topic, pending in list(self._pending.items()):
            consumer = self._consumer_of(topic)
            passed = max(checkpoints.get(consumer, 0), self._noted.get(topic, 0))
            overdue = now - pending.since > self.wait_timeout
            if overdue and passed < pending.position:
                log.warning("%s: %s did not reach %s in time", topic, consumer, pending.position)
            if passed >= pending.position or overdue:
                await self._publish(topic, pending, pending.position)

    async def _checkpoints(self) -> dict[str, int]:
        """Positions of the consumers that pending work still waits for (notes aside)."""
        needed: dict[str, int] = {}
        for topic, pending in self._pending.items():
            if self._noted.get(topic, 0) < pending.position:
                consumer = self._consumer_of(topic)
                needed[consumer] = min(needed.get(consumer, pending.position), pending.position)
        return {consumer: await self.checkpoint(consumer, at) for consumer, at in needed.items()}

    def _consumer_of(self, topic: str) -> str:
        return self.sources[split_topic(topic)[0]].consumer

    async def _publish(self, topic: str, pending: _Pending, target: int) -> None:
        """Read the document once and publish it if it is newer than the last one."""
        change = await self._load(topic)
        if self._pending.get(topic) is pending and pending.position == target:
            del self._pending[topic]  # else newer work arrived while loading: keep it
        previous = self._published.get(topic)
        if not self._watched(topic):
            return
        if previous is None or change.position > previous.position:
            self._published[topic] = change
            self.hub.publish(live_topic(topic), change)
