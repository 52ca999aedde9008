"""In-process publish/subscribe: the hub, its bounded subscriber queues, and their pacing.

Public surface: ``Hub`` (``subscribe``, ``publish``, counts, topic-change
callbacks and observers, ``close``), ``Subscription`` (an async iterator of
messages; ``close``, ``bind``/``unbind``, and ``notify``/``take_nowait`` for a
reader that keeps no task while idle), ``SubscriberOverflow``, ``position_of``/``PositionOf``,
and ``Pacer``/``PACER`` (how long a read-model stream pauses after each message).

Topics used by the service: ``"account:<id>"``, ``"transfer:<id>"`` and
``"ledger"`` (projectors' change notes), ``"live:"`` + each of those (the
documents pushed to subscribers, ``projections.live``), ``"events"`` and
``"events:<stream_id>"`` (the feed, ``projections.live.Feed``).

Two kinds of subscriber, chosen at ``subscribe``:

- *latest only* (read-model streams): the subscriber holds at most one pending
  message; a newer one replaces it. A slow reader sees the latest state and
  may miss intermediate ones, which is fine for documents that carry their
  own version.
- *strict* (event streams): messages queue up to ``maxsize``. When a publish
  finds the queue full the subscriber is detached from its topic; it still
  receives what was queued, then its iteration ends with ``SubscriberOverflow``
  naming the position of the last message it received, which is where the
  client resumes (``events(after: resume_after)``).

``publish`` never blocks and never awaits: projectors and the feed call it from
their loops, and one stuck subscriber cannot slow the others. Everything runs
on one event loop; the hub is not thread-safe.

Pacing: a topic's fan-out never runs ahead of the server. A read-model stream
awaits ``PACER.pace(hub, topic)`` after each message it sent. The pause is
``SECONDS_PER_MESSAGE`` times the topic's subscriber count in this process
(1,000 subscribers: 0.4 s), so a topic costs at most ~2,500 messages/s however
fast it changes; meanwhile the subscriber's latest-only queue keeps only the
newest document, so a burst reaches it as its latest state and nothing stale
piles up in front of a socket. The pause hardly adds to the age of what a
subscriber receives: when it ends, the subscriber sends the newest document
there is.

The pause also adapts to the event loop: a pause that ends more than
``LATE_SECONDS`` after it was due means the loop is behind (the machine is
busy, or sending costs more than budgeted), and the pacer lengthens every
pause a little, up to ``MAX_FACTOR``; pauses that end on time shorten it back.
Mutations, queries and the projectors thus keep getting the loop however many
subscribers there are. Each pause is jittered (0.8x-1.2x) so that subscribers
woken together by one change spread out instead of returning as one burst.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

PositionOf = Callable[[Any], int | None]


class SubscriberOverflow(Exception):
    """A strict subscriber fell ``maxsize`` messages behind and was ended.

    ``resume_after`` is the position of the last message the subscriber
    received (``None`` if it received none): resuming after it misses nothing.
    """

    def __init__(self, topic: str, resume_after: int | None) -> None:
        super().__init__(
            f"subscriber to {topic!r} fell too far behind; resume after position {resume_after}"
        )
        self.topic = topic
        self.resume_after = resume_after


def position_of(message: Any) -> int | None:
    """The ``position`` a message carries, as an attribute or a mapping key."""
    if isinstance(message, Mapping):
        value = message.get("position")
    else:
        value = getattr(message, "position", None)
    return value if isinstance(value, int) else None


class Hub:
    """Topic -> subscribers; ``publish`` fans a message out without waiting.

    ``subscriber_count()``/``topic_count()`` feed metrics and clean-up tests; a
    topic disappears with its last subscriber. ``on_topic_change`` callbacks
    learn when a topic gains its first or loses its last subscriber and
    observers see every published message (the live read-model service only
    does work for watched topics and wakes on projectors' change notes).
    """

    def __init__(self) -> None:
        self._topics: dict[str, set[Subscription]] = {}
        self._watchers: list[Callable[[str, bool], None]] = []
        self._observers: list[Callable[[str, Any], None]] = []
        self.published = 0
        self.overflows = 0  # strict subscribers ended for falling behind
        self.dropped = 0  # messages latest-only subscribers skipped

    def subscribe(
        self,
        topic: str,
        *,
        latest_only: bool,
        maxsize: int = 100,
        resume_position: PositionOf = position_of,
        owner: asyncio.Future[Any] | None = None,
    ) -> Subscription:
        """A new subscription to ``topic``; close it when done (or use ``async with``).

        With ``owner`` (the task reading it) it also closes when that task ends.
        """
        subscription = Subscription(
            self, topic, latest_only=latest_only, maxsize=maxsize, resume_position=resume_position
        )
        subscribers = self._topics.setdefault(topic, set())
        subscribers.add(subscription)
        if len(subscribers) == 1:
            self._notify(topic, True)
        if owner is not None:
            subscription.bind(owner)
        return subscription

    def publish(self, topic: str, message: Any) -> int:
        """Offer ``message`` to every subscriber of ``topic``; returns how many took it."""
        for observer in self._observers:
            observer(topic, message)
        subscribers = self._topics.get(topic)
        if not subscribers:
            return 0
        self.published += 1
        delivered = 0
        for subscription in list(subscribers):
            if subscription._offer(message):
                delivered += 1
            else:
                self.overflows += 1
                self._detach(subscription)
        return delivered

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._topics.get(topic))

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._topics.get(topic, ()))
        return sum(len(subscribers) for subscribers in self._topics.values())

    def pending_count(self) -> int:
        """Messages queued across all subscribers (bounded by their maxsizes)."""
        return sum(sub.pending for subs in self._topics.values() for sub in subs)

    def topic_count(self) -> int:
        return len(self._topics)

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def on_topic_change(self, callback: Callable[[str, bool], None]) -> None:
        """Call ``callback(topic, watched)`` when a topic gains/loses all subscribers."""
        self._watchers.append(callback)

    def add_observer(self, observer: Callable[[str, Any], None]) -> None:
        """Call ``observer(topic, message)`` for every message published (keep it cheap)."""
        self._observers.append(observer)

    def close(self) -> None:
        """End every subscription (their iteration stops) and forget all topics."""
        topics, self._topics = self._topics, {}
        for topic, subscribers in topics.items():
            for subscription in subscribers:
                subscription._end()
            self._notify(topic, False)

    def _detach(self, subscription: Subscription) -> None:
        subscribers = self._topics.get(subscription.topic)
        if subscribers is None or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._topics[subscription.topic]
            self._notify(subscription.topic, False)

    def _notify(self, topic: str, watched: bool) -> None:
        for callback in list(self._watchers):
            callback(topic, watched)


_NOTHING: Any = object()  # an empty latest-only slot


class Subscription:
    """One subscriber's queue; an async iterator of messages.

    Iteration ends (``StopAsyncIteration``) after ``close()`` or ``Hub.close()``,
    or raises ``SubscriberOverflow`` once a strict queue overflowed and drained.
    ``close()`` is idempotent and detaches the subscriber from the hub at once.
    It has one reader: a second ``__anext__`` while one waits raises ``RuntimeError``.

    A server holds one per subscriber, most of them idle, so an idle one keeps
    no container and no synchronisation object: a latest-only subscriber keeps
    its pending message in one slot, a strict one creates its queue with its
    first message, and a reader waits on a future that exists only while it
    waits.
    """

    __slots__ = (
        "_callback",
        "_closed",
        "_hub",
        "_last_position",
        "_latest",
        "_overflowed",
        "_owner",
        "_queue",
        "_resume_position",
        "_waiter",
        "dropped",
        "latest_only",
        "maxsize",
        "topic",
    )

    def __init__(
        self,
        hub: Hub,
        topic: str,
        *,
        latest_only: bool,
        maxsize: int,
        resume_position: PositionOf = position_of,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.topic = topic
        self.latest_only = latest_only
        self.maxsize = 1 if latest_only else maxsize
        self._hub = hub
        self._latest: Any = _NOTHING  # latest only: the pending message
        self._queue: deque[Any] | None = None  # strict: pending messages, once there was one
        self._waiter: asyncio.Future[None] | None = None  # while a reader waits
        self._closed = False
        self._overflowed = False
        self._resume_position = resume_position
        self._last_position: int | None = None
        self._owner: asyncio.Future[Any] | None = None
        self._callback: Callable[[], None] | None = None
        self.dropped = 0  # messages replaced (latest only); for metrics and tests

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    @property
    def pending(self) -> int:
        if self.latest_only:
            return 0 if self._latest is _NOTHING else 1
        return len(self._queue) if self._queue is not None else 0

    def _offer(self, message: Any) -> bool:
        """Queue ``message``; False when a strict queue just overflowed."""
        if self.latest_only:
            if self._latest is not _NOTHING:
                self.dropped += 1
                self._hub.dropped += 1
            self._latest = message
        else:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            elif len(queue) >= self.maxsize:
                self._overflowed = True
                self._wake()
                return False
            queue.append(message)
        self._wake()
        return True

    def _wake(self) -> None:
        callback = self._callback
        if callback is not None:
            callback()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> Any:
        """The next pending message, or ``_NOTHING``."""
        if self.latest_only:
            message, self._latest = self._latest, _NOTHING
            return message
        queue = self._queue
        return queue.popleft() if queue else _NOTHING

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def close(self) -> None:
        """Stop receiving, drop pending messages and detach from the hub.

        A ``notify`` callback is not called for it: the reader closing knows.
        """
        self._callback = None
        if not self._closed:
            self._end()
            self._latest = _NOTHING
            self._queue = None
            self._hub._detach(self)
        self.unbind()

    def bind(self, owner: asyncio.Future[Any]) -> None:
        """Close this subscription as soon as ``owner`` (its consuming task) finishes.

        A server that abandons a subscriber's generator without closing it
        (strawberry's graphql-ws handler does, when a send to a vanished client
        fails) would otherwise leave the queue in the hub until garbage
        collection. Only bind the task that is the subscription's sole reader.
        """
        if owner.done():
            self.close()
            return
        self._owner = owner
        owner.add_done_callback(self._owner_done)

    def unbind(self) -> None:
        """Stop closing with the owner given to ``bind`` (the reader is handing over)."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.remove_done_callback(self._owner_done)

    def _owner_done(self, _: asyncio.Future[Any]) -> None:
        self.close()

    def notify(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` whenever a message arrives or the subscription ends.

        For a reader that keeps no task while idle: it reads with
        ``take_nowait`` when called back (from ``Hub.publish``, so the callback
        must not block; it typically starts a task). A subscription with a
        callback wakes no iterating reader; ``None`` removes it.
        """
        self._callback = callback

    def take_nowait(self) -> Any:
        """The next pending message; ``LookupError`` when there is none (see ``closed``)."""
        message = self._take()
        if message is _NOTHING:
            raise LookupError(self.topic)
        return message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while True:
            message = self._take()
            if message is not _NOTHING:
                position = self._resume_position(message)
                if position is not None:
                    self._last_position = position
                return message
            if self._overflowed:
                self.close()
                raise SubscriberOverflow(self.topic, self._last_position)
            if self._closed:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("another reader is already waiting on this subscription")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- pacing --------------------------------------------------------------------

SECONDS_PER_MESSAGE = 0.0004
MIN_PAUSE = 0.001  # shorter pauses are not worth a timer
LATE_SECONDS = 0.05
MAX_FACTOR = 5.0
SLOWER, FASTER = 1.002, 0.999  # per late / on-time pause (thousands per second)


class Pacer:
    """Spaces each subscriber's messages; ``factor`` (>= 1) grows while the loop is late."""

    def __init__(
        self,
        per_message: float = SECONDS_PER_MESSAGE,
        *,
        late: float = LATE_SECONDS,
        max_factor: float = MAX_FACTOR,
    ) -> None:
        self.per_message = per_message
        self.late = late
        self.max_factor = max_factor
        self.factor = 1.0

    def pause_after(self, hub: Hub, topic: str) -> float:
        """Seconds to pause after a message on ``topic`` (0 when not worth a timer), unjittered."""
        pause = hub.subscriber_count(topic) * self.per_message * self.factor
        return pause if pause >= MIN_PAUSE else 0.0

    def jittered(self, hub: Hub, topic: str) -> float:
        """A pause after a message on ``topic``, jittered (0 when not worth a timer)."""
        return self.pause_after(hub, topic) * random.uniform(0.8, 1.2)

    async def pace(self, hub: Hub, topic: str) -> None:
        """Pause after a message on ``topic``; learn from how late the pause ends."""
        pause = self.jittered(hub, topic)
        if not pause:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + pause
        await asyncio.sleep(pause)
        self.observe(loop.time() - due)

    def observe(self, lateness: float) -> None:
        """Lengthen pauses a little after a late one, shorten them after one on time."""
        if lateness > self.late:
            self.factor = min(self.factor * SLOWER, self.max_factor)
        else:
            self.factor = max(self.factor * FASTER, 1.0)


PACER = Pacer()
"""The process-wide pacer the GraphQL read-model subscriptions use."""
