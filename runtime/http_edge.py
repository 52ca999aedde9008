"""uvicorn's httptools protocol with bounded request heads and deadlines for slow clients.

uvicorn bounds the time between requests on a kept-alive connection
(``timeout_keep_alive``) but not the time a client takes to send a request:
a client that opens a connection and never finishes its headers, or declares
a body and never sends it, holds a socket (and, for the body, a request task)
for ever. httptools puts no limit on the size of the request line and headers
either (h11 has one, ``h11_max_incomplete_event_size``, but is several times
slower).

``bounded_protocol(max_head_bytes, head_timeout, body_timeout)`` returns a
subclass of uvicorn's ``HttpToolsProtocol`` (passed as uvicorn's ``http``
setting) that:

- answers 431 and closes when the request line plus headers pass
  ``max_head_bytes`` (counted as httptools hands them over, before the end
  of the head);
- answers 408 and closes when the head of a request is not complete
  ``head_timeout`` seconds after the connection opened or the request began,
  or its body is not complete ``body_timeout`` seconds after the head.

It overrides uvicorn's parser callbacks (``on_message_begin``, ``on_url``,
``on_header``, ``on_headers_complete``, ``on_message_complete``), its
``connection_made``/``connection_lost``, ``handle_websocket_upgrade`` and
``send_400_response``, and reads
``transport`` and ``cycle.response_started``: all attributes of uvicorn's
HttpToolsProtocol, pinned by the tests in ``tests/security``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nrequest too slow"
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 25\r\n"
    b"connection: close\r\n\r\nrequest headers too large"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """See the module; the limits are class attributes set by ``bounded_protocol``."""

    max_head_bytes = 16_384
    head_timeout = 10.0
    body_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_too_large = False
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            transport.write(_TIMEOUT)
        transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)  # the first request's head, from the connection on

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm(self.head_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._head_too_large = True
            # httptools turns this into a parser error: uvicorn answers through
            # send_400_response (below) and stops reading.
            raise ValueError("request head too large")

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        self._disarm()
        self.transport.write(_TOO_LARGE)
        self.transport.close()


def bounded_protocol(
    max_head_bytes: int, head_timeout: float, body_timeout: float
) -> type[BoundedHttpToolsProtocol]:
    """A ``BoundedHttpToolsProtocol`` class with these limits (uvicorn's ``http`` setting)."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "max_head_bytes": max_head_bytes,
            "head_timeout": head_timeout,
            "body_timeout": body_timeout,
        },
    )
