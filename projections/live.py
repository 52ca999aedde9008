"""Live updates of one server process: the event feed and read-model change streams.

Public surface:

- ``Live`` (``start``, ``stop``, ``events``, ``changes``, ``documents``, ``current``), the
  facade the GraphQL subscriptions use, and ``create_live`` that wires it;
- ``Feed``: the per-process tail of the global order and the ``events`` stream;
- ``LiveReadModels``: read-model change streams for watched topics, and
  ``Follower``, a stream parked with no task while idle;
- topics and records: ``topic_for``, ``live_topic``, ``split_topic``,
  ``EVENTS_TOPIC``, ``stream_topic``, ``ReadModelChange``, ``ReadModelSource``,
  ``CheckpointReader``, ``checkpoint_reader``.

Every process tails the same global feed, so a subscriber on process B sees
changes caused by a mutation on process A.

Feed: one ``Feed`` per server process reads ``store.read_all(after)`` in
position order and publishes each event to the hub topics ``"events"`` and
``"events:<stream_id>"``, and hands each batch to its listeners (the live
read-model service). It wakes on the store's in-process head notifier when one
is given; while that notifier is kept current in this process (its
``watch_bound``, see ``store.notifier``) an idle feed reads nothing, otherwise
it polls briefly for commits sequenced by other processes. Every subscriber
shares this one loop: there is never a database cursor per subscriber, only
short catch-up reads when a subscription starts. ``Feed.events(after, ...)``
catches a subscriber up from the store, then goes live without gap or
duplicate at the seam: it subscribes to the hub *first*, catches up until the
store has nothing newer, then drops live events at or below the last position
it delivered.

Read models: a topic is ``"<kind>:<key>"`` (``"account:<id>"``) or a kind
alone (``"ledger"``); each kind's ``ReadModelSource`` says how to read its
documents and which of its topics an event may change (the features' read
sides provide them: ``projections.projector.ReadSides.live_sources``).
Projectors publish change notes ``{id, version, position}`` on the topic
itself; documents go to ``live_topic(topic)``, so a note never displaces a
document in a subscriber's queue. For each event the feed sees,
``LiveReadModels`` works out which read-model documents it affects
(each source's ``route``), and only for topics somebody watches:

1. remembers the highest affecting position per topic (coalesced: a burst of
   100 deposits to one account costs one read, not 100);
2. waits, bounded, until the projector that owns the document has passed that
   position (its checkpoint; one checkpoint read per poll tick serves every
   pending topic; a change note a projector in this process published on the
   topic wakes it at once);
3. reads the document once through its ``ReadModelSource`` and publishes a
   ``ReadModelChange`` (document + version + position) to ``live:<topic>``.

Subscribers (``changes(topic)``) are latest-only: a slow one skips to the
newest state. ``documents(topic, convert)`` is the same stream as a GraphQL
subscription sends it: each present document converted, paced after each
(``projections.hub.PACER``).

Parking: most subscribers are idle most of the time, and an idle generator
(with everything that iterates it) is the bulk of what a subscriber costs. A
caller of ``documents(..., park=take)`` offers to take the stream over once it
has sent its current document, before the pause that follows it:
``take(follower)`` returning True ends the generator and hands its hub
subscription (and the rest of the pause) to a ``Follower``, which keeps no
task while idle. When a change arrives the hub calls it back; it starts one
short task that sends every present document through the caller's ``send``
(converted and paced exactly like the generator) and ends when nothing is
pending. The caller starts it with ``follower.start(send, end)`` and closes it
with ``follower.close()``; ``end`` is awaited when the stream ends from this
side (``Live.stop``), where the generator would have returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from projections.checkpoints import CheckpointStore, ProgressBoard
from projections.consumer import shared_log
from projections.hub import PACER, Hub, SubscriberOverflow, Subscription, position_of
from store.notifier import HeadNotifier
from store.protocol import EventStore, RecordedEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS_TOPIC = "events"
LIVE_PREFIX = "live:"

# -- topics and records --------------------------------------------------------

Loader = Callable[[str], Awaitable[Any]]
CheckpointReader = Callable[[str, int], Awaitable[int]]
"""``(consumer, needed) -> position``: may skip the database when ``needed`` is known reached."""


@dataclass(frozen=True)
class ReadModelChange:
    """A read-model document as of ``position`` (``version``: its stream version).

    ``document`` is what the source loaded (a read-view record, a list of
    them for the ledger) or ``None`` when it does not exist (yet).
    """

    topic: str
    document: Any
    version: int | None
    position: int


@dataclass(frozen=True)
class ReadModelSource:
    """How to read one kind of document, which consumer writes it, what changes it.

    ``load(key)`` returns the document: a record or mapping with ``version``
    and ``position``, a list of them (the ledger), or ``None`` if absent.
    ``route(event)`` names the topics of this kind the event may change.
    """

    consumer: str
    load: Loader
    route: Callable[[RecordedEvent], tuple[str, ...]]


def topic_for(kind: str, key: str = "") -> str:
    """``"<kind>:<key>"``, or ``kind`` alone when there is no key."""
    return f"{kind}:{key}" if key else kind


def live_topic(topic: str) -> str:
    """The hub topic carrying ``ReadModelChange`` messages for ``topic``.

    Kept apart from ``topic`` itself, where projectors publish their change
    notes: a note must never take a document's place in a latest-only queue.
    """
    return LIVE_PREFIX + topic


def split_topic(topic: str) -> tuple[str, str]:
    kind, _, key = topic.partition(":")
    return kind, key


def _describe(document: Any) -> tuple[int | None, int]:
    """(version, position) a loaded document or record reflects; position 0 when absent.

    A list (the ledger: one entry per currency) reflects its highest position.
    """
    if document is None:
        return None, 0
    if isinstance(document, Sequence) and not isinstance(document, str):
        return None, max((position_of(item) or 0 for item in document), default=0)
    if isinstance(document, Mapping):
        version = document.get("version")
    else:
        version = getattr(document, "version", None)
    return (version if isinstance(version, int) else None), position_of(document) or 0


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


# -- the feed ------------------------------------------------------------------

# How long a feed waits on a watched notifier before looking at it again (in
# case the watcher stopped): the notifier wakes it at once when the head moves.
_WATCHED_WAIT = 5.0
BatchListener = Callable[[Sequence[RecordedEvent]], None]


def stream_topic(stream_id: str) -> str:
    """The hub topic carrying the events of one stream."""
    return f"{EVENTS_TOPIC}:{stream_id}"


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


# -- read-model changes --------------------------------------------------------


@dataclass
class _Pending:
    position: int
    since: float


class LiveReadModels:
    """Publishes read-model changes for watched topics (see "Read models" above).

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

    def changes(
        self, topic: str, *, owner: asyncio.Future[Any] | None = None
    ) -> AsyncGenerator[ReadModelChange, None]:
        """The current document, then each newer one (latest-only when slow).

        ``owner``: the task reading this stream (see ``Subscription.bind``).
        """
        return self._follow(topic, owner, None)

    def documents(
        self,
        topic: str,
        convert: Callable[[Any], T],
        *,
        owner: asyncio.Future[Any] | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
        park: Callable[[Follower], bool] | None = None,
    ) -> AsyncGenerator[T, None]:
        """``convert(document)`` for ``changes(topic)`` whose document is present, paced.

        After each one it yields, the stream pauses for ``PACER.pace`` (in
        proportion to the topic's subscribers; see ``projections.hub``).
        ``admit``, when given, is awaited first, before the stream subscribes to
        the topic: what it raises ends the stream before it yields anything (a
        subscriber's authorization goes there, so that the caller needs no
        generator of its own around this one). ``park``, when given, is offered
        the stream once its current document was sent (see "Parking"
        above): if it takes the ``Follower``, the generator ends there.
        """
        return self._follow(topic, owner, convert, admit, park)

    async def _follow(
        self,
        topic: str,
        owner: asyncio.Future[Any] | None,
        convert: Callable[[Any], Any] | None,
        admit: Callable[[], Awaitable[None]] | None = None,
        park: Callable[[Follower], bool] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """``changes`` (``convert`` None) or ``documents``.

        One generator for both: an idle subscriber keeps this one frame
        suspended, not a generator of its own around another.
        """
        if admit is not None:
            await admit()
            del admit  # not kept for the stream's life
        newly_watched = not self._watched(topic)
        hub_topic = live_topic(topic)
        subscription = self.hub.subscribe(hub_topic, latest_only=True, owner=owner)
        handed_over = False
        seen = self._seen  # later feed events for the topic are noted by on_batch
        try:
            change = await self.current(topic)
            if newly_watched and change.position < seen:
                self._follow_up(topic, seen)
            while True:
                sent = False
                if convert is None:
                    yield change
                elif change.document is not None:
                    yield convert(change.document)
                    sent = True
                last = change.position
                if park is not None and convert is not None:
                    # Parked before its pause, which the follower keeps: the
                    # stream's generator, and all that iterates it, end now.
                    pause = PACER.jittered(self.hub, hub_topic) if sent else 0.0
                    if park(Follower(self.hub, subscription, convert, last, pause)):
                        subscription.unbind()  # the follower's owner closes it from now on
                        handed_over = True
                        return
                    park = None
                if sent:
                    await PACER.pace(self.hub, hub_topic)
                async for message in subscription:
                    if isinstance(message, ReadModelChange) and message.position > last:
                        change = message
                        break
                else:
                    return  # the subscription ended
        finally:
            if not handed_over:
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
        version, position = _describe(document)
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


class Follower:
    """A parked ``documents`` stream: no task while idle (see "Parking" in the module).

    ``start(send, end)``: from then on each newer present document is sent as
    ``await send(convert(document))`` and paced, from one task that exists only
    while something is pending. ``pause``: what is left of the pause after the
    stream's last message (it parks before pausing, so that the set-up it
    ends is not kept for the pause). ``end()`` is awaited once if the hub ends the
    subscription (the process stops). ``close()`` stops it for good and detaches
    it from the hub (idempotent); neither callback is called after it. ``send``
    should handle its own errors: one that escapes is logged here and closes
    the follower.
    """

    __slots__ = (
        "_context",
        "_convert",
        "_end",
        "_hub",
        "_last",
        "_resume_at",
        "_send",
        "_subscription",
        "_task",
    )

    def __init__(
        self,
        hub: Hub,
        subscription: Subscription,
        convert: Callable[[Any], Any],
        last: int,
        pause: float = 0.0,
    ) -> None:
        self._hub = hub
        self._subscription = subscription
        self._convert = convert
        self._last = last
        # the pause still due after the stream's last message (loop time; 0: none)
        self._resume_at = asyncio.get_running_loop().time() + pause if pause else 0.0
        self._send: Callable[[Any], Awaitable[None]] | None = None
        self._end: Callable[[], Awaitable[None]] | None = None
        self._context: contextvars.Context | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        """The read-model topic (``"account:<id>"``)."""
        return self._subscription.topic.removeprefix(LIVE_PREFIX)

    def start(
        self,
        send: Callable[[Any], Awaitable[None]],
        end: Callable[[], Awaitable[None]],
        *,
        context: contextvars.Context | None = None,
    ) -> None:
        """Deliver from now on; each delivery task runs in ``context`` when given.

        (The hub calls back from whichever task publishes; ``context`` is the
        subscriber's own, so that what a delivery logs carries its request id.)
        """
        self._send, self._end, self._context = send, end, context
        subscription = self._subscription
        subscription.notify(self._ready)
        if subscription.pending or subscription.closed:  # since the stream was handed over
            self._ready()

    def close(self) -> None:
        self._send = self._end = None
        self._context = None
        self._subscription.close()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _ready(self) -> None:
        if self._task is None and self._send is not None:
            context = self._context
            self._task = asyncio.get_running_loop().create_task(
                self._deliver(),
                # a copy per delivery, as a task of its own would get
                context=None if context is None else context.copy(),
            )

    async def _deliver(self) -> None:
        subscription = self._subscription
        hub_topic = subscription.topic
        loop = asyncio.get_running_loop()
        try:
            while (send := self._send) is not None:
                if self._resume_at:
                    wait, self._resume_at = self._resume_at - loop.time(), 0.0
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue  # then the newest pending message
                try:
                    message = subscription.take_nowait()
                except LookupError:
                    if subscription.closed:
                        end = self._end
                        self.close()
                        if end is not None:
                            await end()
                    return
                if not isinstance(message, ReadModelChange) or message.position <= self._last:
                    continue
                self._last = message.position
                if message.document is not None:
                    await send(self._convert(message.document))
                    await PACER.pace(self._hub, hub_topic)
        except Exception:  # ``send`` handles its own; this is a bug: logged, and the stream ends
            log.exception("parked stream of %s failed", hub_topic)
            self.close()
        finally:
            if self._task is asyncio.current_task():
                self._task = None


# -- the facade ----------------------------------------------------------------


class Live:
    """The live services one server process runs: the feed tail and read-model changes.

    ``runtime/bootstrap.py`` builds one, starts it in the lifespan and puts it in the
    GraphQL context (``context.live``); ``schema.subscriptions`` uses only
    ``events`` and ``documents``.
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

    def documents(
        self,
        topic: str,
        convert: Callable[[Any], T],
        *,
        owner: asyncio.Future[Any] | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
        park: Callable[[Follower], bool] | None = None,
    ) -> AsyncGenerator[T, None]:
        return self.read_models.documents(topic, convert, owner=owner, admit=admit, park=park)

    async def current(self, topic: str) -> ReadModelChange:
        return await self.read_models.current(topic)


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

    ``sources``: how to read each kind of read-model document and which topics
    an event changes (topic kind -> source). Pass the same ``hub`` the
    projectors publish their change notes to; the store's ``notifier`` wakes
    the feed. ``await live.start()`` after the consumers started;
    ``await live.stop()`` before the store closes.
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
