"""uvicorn's sans-io WebSocket protocol, holding less per idle connection.

A server with thousands of idle subscribers pays for every object each
connection keeps. uvicorn's ``WebSocketsSansIOProtocol`` (what its ``ws="auto"``
picks with websockets installed) keeps, for the connection's whole life:

- the parsed handshake request and the handshake response, with their header
  objects, although nothing reads them once the handshake is done (the ASGI
  scope has its own copy of the request headers);
- an ``asyncio.Queue`` for the messages the app has yet to receive: three
  deques (its items, its getters, its putters) of about 760 bytes each,
  although uvicorn pauses reading after every message until the app has taken
  it, so it never holds more than a message and a disconnect;
- an ``asyncio.Event`` for write flow control, with its own deque of waiters;
- an instance dict sized for the attributes it had while they were being set.

``LeanWebSocketProtocol`` is that protocol with the same behaviour and less
state: an inbox and a writable flag that allocate a container only while
something is queued or waiting, the handshake request and response dropped
once the response is sent (and the request's headers emptied: websockets'
frame parser, a suspended generator, still refers to the request), and the
instance dict rebuilt compactly then.

It overrides ``__init__`` and ``send``, and replaces the attributes
``queue`` (used through ``put_nowait``, ``get`` and ``empty``), ``writable``
(``set``, ``clear``, ``wait``), ``request`` and ``response`` of uvicorn's
``WebSocketsSansIOProtocol``: all pinned by ``tests/live/test_websocket_edge.py``
(UPGRADING.md). ``WEBSOCKET_PROTOCOL=uvicorn`` runs uvicorn's own class instead;
``make test-plain-engine`` runs the live, end-to-end and security suites that way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

T = TypeVar("T")


class Inbox(Generic[T]):
    """An unbounded FIFO with ``asyncio.Queue``'s ``put_nowait``, ``get`` and ``empty``.

    Holds a deque only while items wait and a future only while a reader
    waits. One reader at a time, as uvicorn's ``receive`` is. An item put
    while the reader is being cancelled stays queued for the next ``get``.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> T:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("Inbox.get is already being awaited")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.popleft()
        if not items:
            self._items = None  # an idle connection keeps no deque
        return item


class WritableFlag:
    """``asyncio.Event``'s ``is_set``, ``set``, ``clear`` and ``wait``, starting set.

    Holds a list of waiters only while a writer waits for the transport to drain.
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = WritableFlag()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        handshaking = not self.handshake_complete
        await super().send(message)
        if handshaking and self.handshake_complete:
            # Only the handshake reads these; the scope keeps the request's headers.
            # websockets' parser keeps the request object itself (a local of its
            # suspended generator), so its headers are emptied, not just dropped.
            if self.request is not None:
                self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]
            # Set one by one, the attributes left the dict with spare room;
            # rebuilt at once it holds them in about half the memory.
            self.__dict__ = dict(self.__dict__)


def websocket_protocol(name: str) -> type[asyncio.Protocol] | str:
    """uvicorn's ``ws`` setting for ``WEBSOCKET_PROTOCOL``: ``lean`` or ``uvicorn``."""
    if name == "lean":
        return LeanWebSocketProtocol
    if name == "uvicorn":
        return "websockets-sansio"
    raise ValueError(f"unknown WebSocket protocol {name!r}")
