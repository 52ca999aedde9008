"""ASGI middleware around the whole app: request ids, body limit, HTTP and WebSocket counts.

Pure ASGI (not ``BaseHTTPMiddleware``) so that it also sees WebSockets and never
buffers a streamed response.

- Every HTTP request and WebSocket connection gets a request id: the client's
  ``X-Request-ID`` when it is a short plain token, else a fresh one. It is
  bound into the log context and echoed in the ``X-Request-ID`` response header.
- HTTP bodies larger than ``max_body_bytes`` get 413 before the app reads them
  (by ``Content-Length``, or while streaming when it is absent). A client that
  leaves before its body is complete is logged at INFO and counted as 4xx.
- The request's W3C ``traceparent`` starts its trace (``runtime.tracing``: a
  server span while tracing is on; else, when well formed, it is kept for the
  commits the request causes). A malformed one is ignored.
- WebSocket connections are counted, and so are subscriptions, by watching the
  GraphQL-over-WebSocket messages of both protocols (``subscribe``/``start``
  opens one, ``complete``/``stop``/``error`` or the socket's end closes it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.ids import random_hex
from runtime import tracing
from runtime.logging import request_id_var
from runtime.metrics import Children, Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_OPEN = {"subscribe", "start"}
_CLOSE = {"complete", "stop", "error"}
_PATH_GROUPS = ("/graphql", "/healthz", "/readyz", "/metrics")
CLIENT_CLOSED_REQUEST = 499
"""Counted for a request whose client left before its body was complete (nginx's code)."""
log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The request body passed the limit while streaming."""


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and (usable := _usable_request_id(value)):
            return usable
    return random_hex()


def _usable_request_id(value: bytes) -> str | None:
    """The client's ``X-Request-ID`` when it is a short plain token, else None."""
    text: str = value.decode("latin-1")
    return text if _REQUEST_ID.match(text) else None


def _scan_headers(scope: Scope) -> tuple[str, int | None, bytes | None]:
    """The request id to use, the declared ``Content-Length`` (None if absent) and the
    raw ``traceparent`` header (None if absent), in one pass."""
    request_id: str | None = None
    length: int | None = None
    traceparent: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and length is None:
            try:
                length = int(value)
            except ValueError:
                length = 0
        elif name == b"x-request-id" and request_id is None:
            request_id = _usable_request_id(value)
        elif name == b"traceparent" and traceparent is None:
            traceparent = value
    return request_id or random_hex(), length, traceparent


class _ResponseStart:
    """The ``send`` given to the app: adds ``X-Request-ID`` and remembers the status sent."""

    __slots__ = ("_header", "_send", "status")

    def __init__(self, send: Send, request_id: bytes) -> None:
        self._send = send
        self._header = (b"x-request-id", request_id)
        self.status = 0  # none sent yet

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            message = {**message, "headers": [*message.get("headers", ()), self._header]}
        await self._send(message)


class RuntimeMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._requests = Children(metrics.http_requests)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Hands back the coroutine to await instead of awaiting it here, so that
        # no frame of this dispatch lives as long as a WebSocket connection.
        if scope["type"] == "http":
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, declared, traceparent = _scan_headers(scope)
        response = _ResponseStart(send, request_id.encode())
        token = request_id_var.set(request_id)
        trace = tracing.request(scope, traceparent, _path_group(scope.get("path", "")))
        try:
            if declared is not None and declared > self.max_body_bytes:
                await _too_large(response.send)
            elif declared is not None:
                # The server frames the body by Content-Length, so it cannot grow past it.
                await self.app(scope, receive, response.send)
            else:
                await self.app(scope, self._limited(receive), response.send)
        except BodyTooLarge:
            if response.status:
                raise
            await _too_large(response.send)
        except ClientDisconnect:
            # The client left (or was cut off by runtime/http_edge.py's deadline)
            # before its body was complete: nobody to answer, not a server error.
            log.info("the client disconnected before sending its whole request")
            response.status = response.status or CLIENT_CLOSED_REQUEST
        finally:
            if trace is not None:
                trace.end(response.status or 500)
            request_id_var.reset(token)
            group = _path_group(scope.get("path", ""))
            self._requests(group, f"{response.status // 100 or 5}xx").inc()

    def _limited(self, receive: Receive) -> Receive:
        seen = [0]

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        return limited_receive

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Kept for the whole connection: one small tracker whose bound methods
        # wrap receive and send, and the context variable's token.
        tracker = _SubscriptionTracker(self.metrics, receive, send)
        token = request_id_var.set(request_id_from(scope))
        try:
            await self.app(scope, tracker.receive, tracker.send)
        finally:
            tracker.closed()
            request_id_var.reset(token)


class _SubscriptionTracker:
    """One WebSocket connection's receive and send, watched for its live subscription ids.

    Mirrors the connection and its subscriptions into the gauges. ``active``
    is a tuple: a connection has few subscriptions (strawberry bounds them) and
    most have one, which a tuple holds in far less memory than a set.
    """

    __slots__ = ("_receive", "_send", "active", "is_connected", "metrics")

    def __init__(self, metrics: Metrics, receive: Receive, send: Send) -> None:
        self.metrics = metrics
        self._receive = receive
        self._send = send
        self.active: tuple[str, ...] = ()
        self.is_connected = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            self.client_said(message.get("text"))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.accept":
            self.connected()
        elif message["type"] == "websocket.send":
            self.server_said(message.get("text"))
        await self._send(message)

    def connected(self) -> None:
        if not self.is_connected:
            self.is_connected = True
            self.metrics.websocket_connections.inc()

    def client_said(self, text: str | None) -> None:
        kind, op_id = _message(text)
        if kind in _OPEN and op_id is not None and op_id not in self.active:
            self.active = (*self.active, op_id)
            self.metrics.subscriptions.inc()
        elif kind in _CLOSE:
            self._end(op_id)

    def server_said(self, text: str | None) -> None:
        # Most server messages are subscription data: skip parsing them, since a
        # closing message always names its type ("complete" or "error").
        if not text or ('"complete"' not in text and '"error"' not in text):
            return
        kind, op_id = _message(text)
        if kind in _CLOSE:
            self._end(op_id)

    def _end(self, op_id: str | None) -> None:
        if op_id is not None and op_id in self.active:
            self.active = tuple(active for active in self.active if active != op_id)
            self.metrics.subscriptions.dec()

    def closed(self) -> None:
        if self.active:
            self.metrics.subscriptions.dec(len(self.active))
            self.active = ()
        if self.is_connected:
            self.is_connected = False
            self.metrics.websocket_connections.dec()


def _message(text: str | None) -> tuple[str | None, str | None]:
    """The ``type`` and ``id`` of one protocol message; (None, None) if it is not one."""
    if not text or len(text) > 1_000_000:
        return None, None
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError):  # the GraphQL handler closes the socket (4400)
        return None, None
    if not isinstance(data, dict):
        return None, None
    kind, op_id = data.get("type"), data.get("id")
    return (kind if isinstance(kind, str) else None), (op_id if isinstance(op_id, str) else None)


async def _too_large(send: Send) -> None:
    body = b'{"errors":[{"message":"request body too large"}]}'
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _path_group(path: str) -> str:
    for group in _PATH_GROUPS:
        if path == group or path.startswith(group + "/"):
            return group
    return "other"
