"""The per-process tail of the global event feed, and the ``events`` stream.

One ``Feed`` per server process reads ``store.read_all(after)`` in position
order and publishes each event to the hub topics ``"events"`` and
``"events:<stream_id>"``, and hands each batch to its listeners (the live
read-model service). It wakes on the store's in-process head notifier when one
is given; while that notifier is kept current in this process (its
``watch_bound``, see ``store.notifier``) an idle feed reads nothing, otherwise
it polls briefly for commits sequenced by other processes. Every
subscriber shares this one loop: there is never a database cursor per
subscriber, only short catch-up reads when a subscription starts.

``Feed.events(after, ...)`` catches a subscriber up from the store, then goes
live without gap or duplicate at the seam: it subscribes to the hub *first*,
catches up until the store has nothing newer, then drops live events at or
below the last position it delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from projections.hub import Hub
from projections.shared_log import shared_log
from projections.subscription import SubscriberOverflow, Subscription
from store.protocol import EventStore, RecordedEvent

log = logging.getLogger(__name__)

EVENTS_TOPIC = "events"
# How long a feed waits on a watched notifier before looking at it again (in
# case the watcher stopped): the notifier wakes it at once when the head moves.
_WATCHED_WAIT = 5.0
BatchListener = Callable[[Sequence[RecordedEvent]], None]


def stream_topic(stream_id: str) -> str:
    """The hub topic carrying the events of one stream."""
    return f"{EVENTS_TOPIC}:{stream_id}"


class HeadNotifier(Protocol):
    """The store's in-process signal that the global head moved (``store.notifier``)."""

    @property
    def head(self) -> int: ...

    @property
    def watched(self) -> bool:
        """Whether ``head`` is kept current in this process (no need to poll the store)."""
        ...

    async def wait_beyond(self, position: int, timeout: float) -> object:  # noqa: ASYNC109
        """Return once the head is beyond ``position`` or ``timeout`` seconds passed."""
        ...


class Feed:
    """Tails the global order once per process and fans events out.

    ``start()`` begins at the store's current head (earlier events are served
    by catch-up reads); ``stop()`` cancels the loop. Read errors are logged and
    retried with a growing pause; the loop never skips a position.
    """

    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        *,
        notifier: HeadNotifier | None = None,
        poll_interval: float = 0.05,
        batch_size: int = 500,
        queue_size: int = 1000,
    ) -> None:
        self.store = store
        self.hub = hub
        self.notifier = notifier
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.position = 0
        self._listeners: list[BatchListener] = []
        self._task: asyncio.Task[None] | None = None
        self._advanced = asyncio.Event()
        self._log = shared_log(store)  # the consumers of this process read the same

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def add_listener(self, listener: BatchListener) -> None:
        """Call ``listener(batch)`` with each batch, after it was published."""
        self._listeners.append(listener)

    async def start(self, from_position: int | None = None) -> None:
        if self.running:
            return
        if from_position is None:
            from_position = await self.store.head_position()
        self.position = from_position
        self._task = asyncio.create_task(self._run(), name="live-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_for(self, position: int, within: float) -> bool:
        """Wait until the feed has published ``position``; False after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.position < position:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._advanced.clear()
            try:
                await asyncio.wait_for(self._advanced.wait(), remaining)
            except TimeoutError:
                return self.position >= position
        return True

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                batch = await self._log.read_all(self.position, self.batch_size)
            except Exception:  # the database may be restarting; keep the position
                failures += 1
                log.exception("live feed read failed after position %s", self.position)
                await asyncio.sleep(min(5.0, self.poll_interval * 2**failures))
                continue
            failures = 0
            if batch:
                self._publish(batch)
            if len(batch) < self.batch_size:
                await self._wait()

    def _publish(self, batch: Sequence[RecordedEvent]) -> None:
        for event in batch:
            self.hub.publish(EVENTS_TOPIC, event)
            self.hub.publish(stream_topic(event.stream_id), event)
        last = batch[-1].position
        assert last is not None, "read_all returns sequenced events only"
        self.position = last
        self._advanced.set()
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception:  # one faulty listener must not stop the feed
                log.exception("live feed listener %r failed", listener)

    async def _wait(self) -> None:
        notifier = self.notifier
        if notifier is None:
            await asyncio.sleep(self.poll_interval)
            return
        # Kept current here: read only once the head moved past what was published.
        while notifier.watched and notifier.head <= self.position:
            await notifier.wait_beyond(self.position, _WATCHED_WAIT)
        await notifier.wait_beyond(self.position, self.poll_interval)

    async def events(
        self,
        after: int = 0,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
        maxsize: int | None = None,
        owner: asyncio.Future[Any] | None = None,
    ) -> AsyncGenerator[RecordedEvent, None]:
        """Every matching event with ``position > after``, in order, then live.

        Raises ``SubscriberOverflow`` (``resume_after`` = last position yielded)
        when the consumer falls ``maxsize`` events behind the live feed.
        ``owner``: the task reading this stream (see ``Subscription.bind``).
        """
        topic = EVENTS_TOPIC if stream_id is None else stream_topic(stream_id)
        wanted = frozenset(types) if types else None
        last = after
        while True:
            subscription = self.hub.subscribe(
                topic, latest_only=False, maxsize=maxsize or self.queue_size, owner=owner
            )
            try:
                async for event in self._pass(subscription, last, stream_id, types, wanted):
                    last = _position(event)
                    yield event
                if not subscription.overflowed:
                    return
                # catch-up outran the live queue: catch up again from the store
            except SubscriberOverflow as overflow:
                raise SubscriberOverflow(topic, last) from overflow
            finally:
                subscription.close()

    async def _pass(
        self,
        subscription: Subscription,
        after: int,
        stream_id: str | None,
        types: Sequence[str] | None,
        wanted: frozenset[str] | None,
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from the store after ``after``, then follow ``subscription`` live.

        Stops after the catch-up when the subscription overflowed meanwhile (the
        caller subscribes afresh and catches up again); the live part drops what
        the catch-up already delivered.
        """
        async for event in self._catch_up(after, stream_id, types):
            after = _position(event)
            yield event
        if subscription.overflowed:
            return
        async for event in _live(subscription, after, wanted):
            yield event

    async def _catch_up(
        self, after: int, stream_id: str | None, types: Sequence[str] | None
    ) -> AsyncIterator[RecordedEvent]:
        while True:
            batch = await self.store.read_all(
                after, self.batch_size, stream_id=stream_id, types=types
            )
            for event in batch:
                yield event
                after = _position(event)
            if len(batch) < self.batch_size:
                return


async def _live(
    subscription: Subscription, last: int, wanted: frozenset[str] | None
) -> AsyncIterator[RecordedEvent]:
    async for event in subscription:
        if _position(event) <= last or (wanted is not None and event.type not in wanted):
            continue
        last = _position(event)
        yield event


def _position(event: RecordedEvent) -> int:
    assert event.position is not None, "read_all returns sequenced events only"
    return event.position
