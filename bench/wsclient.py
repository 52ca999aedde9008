"""A minimal graphql-transport-ws subscriber on the ``websockets`` library.

Kept small on purpose: one benchmark process runs a thousand of them, so each
message costs one ``json.loads`` and a callback. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
OPEN_TIMEOUT = 30.0

OnNext = Callable[[dict[str, Any], float], None]  # (payload data, perf_counter at receipt)


class SubscriptionFailed(RuntimeError):
    """The server refused the connection or the subscription."""


class Subscriber:
    """One WebSocket connection carrying one subscription (id ``"1"``)."""

    def __init__(self, url: str, query: str, variables: dict[str, Any], on_next: OnNext) -> None:
        self.url = url
        self.query = query
        self.variables = variables
        self.on_next = on_next
        self.messages = 0
        self.error: str | None = None
        self._ws: ClientConnection | None = None

    async def open(self) -> None:
        """Connect, initialise and subscribe; return once the server acknowledged."""
        async with asyncio.timeout(OPEN_TIMEOUT):
            self._ws = await connect(
                self.url, subprotocols=[PROTOCOL], ping_interval=None, max_size=2**20
            )
            await self._send({"type": "connection_init", "payload": {}})
            reply = json.loads(await self._ws.recv())
            if reply.get("type") != "connection_ack":
                raise SubscriptionFailed(f"no connection_ack: {reply}")
            payload = {"query": self.query, "variables": self.variables}
            await self._send({"id": "1", "type": "subscribe", "payload": payload})

    async def listen(self) -> None:
        """Hand every ``next`` payload to ``on_next`` until the stream ends or is cancelled."""
        assert self._ws is not None
        try:
            async for raw in self._ws:
                received = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    self.messages += 1
                    self.on_next(message["payload"], received)
                elif kind == "ping":
                    await self._send({"type": "pong"})
                elif kind in ("error", "complete"):
                    self.error = f"{kind}: {message.get('payload')}"
                    return
        except ConnectionClosed as closed:
            self.error = f"closed: {closed}"

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message))
