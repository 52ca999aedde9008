"""In-process publish/subscribe with bounded per-subscriber queues.

Topics used by the service: ``"account:<id>"``, ``"transfer:<id>"`` and
``"ledger"`` (projectors' change notes), ``"live:"`` + each of those (the
documents pushed to subscribers, ``projections.live``), ``"events"`` and
``"events:<stream_id>"`` (the feed, ``projections.feed``).

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from projections.subscription import PositionOf, SubscriberOverflow, Subscription, position_of

__all__ = ["Hub", "PositionOf", "SubscriberOverflow", "Subscription", "position_of"]


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
