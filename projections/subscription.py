"""A hub subscriber: its bounded queue, overflow, and iteration (see ``projections.hub``).

``projections.hub`` re-exports ``Subscription``, ``SubscriberOverflow`` and
``position_of``; import them from either module.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the hub imports this module
    from projections.hub import Hub

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


class Subscription:
    """One subscriber's queue; an async iterator of messages.

    Iteration ends (``StopAsyncIteration``) after ``close()`` or ``Hub.close()``,
    or raises ``SubscriberOverflow`` once a strict queue overflowed and drained.
    ``close()`` is idempotent and detaches the subscriber from the hub at once.
    """

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
        self._queue: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._overflowed = False
        self._resume_position = resume_position
        self._last_position: int | None = None
        self._owner: asyncio.Future[Any] | None = None
        self.dropped = 0  # messages replaced (latest only); for metrics and tests

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _offer(self, message: Any) -> bool:
        """Queue ``message``; False when a strict queue just overflowed."""
        if self.latest_only:
            if self._queue:
                self._queue.clear()
                self.dropped += 1
                self._hub.dropped += 1
        elif len(self._queue) >= self.maxsize:
            self._overflowed = True
            self._ready.set()
            return False
        self._queue.append(message)
        self._ready.set()
        return True

    def _end(self) -> None:
        self._closed = True
        self._ready.set()

    def close(self) -> None:
        """Stop receiving, drop pending messages and detach from the hub."""
        if not self._closed:
            self._end()
            self._queue.clear()
            self._hub._detach(self)
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.remove_done_callback(self._owner_done)

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

    def _owner_done(self, _: asyncio.Future[Any]) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._queue:
                message = self._queue.popleft()
                position = self._resume_position(message)
                if position is not None:
                    self._last_position = position
                return message
            if self._overflowed:
                self.close()
                raise SubscriberOverflow(self.topic, self._last_position)
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
