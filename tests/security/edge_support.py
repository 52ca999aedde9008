"""Helpers for the edge tests: raw sockets, WebSocket exchanges and the server log."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import Server

RECEIVE_WITHIN = 10.0
_SERVER_FAULT = re.compile(r"^\S+ (ERROR|CRITICAL) |Traceback|Task exception was never retrieved")


def server_faults(server: Server, since: int = 0) -> list[str]:
    """Lines of the server's log, from character ``since`` on, that report a server fault."""
    return [line for line in server.log()[since:].splitlines() if _SERVER_FAULT.search(line)]


async def raw_exchange(server: Server, request: bytes, *, within: float = 10.0) -> bytes:
    """Send ``request`` on a fresh TCP connection; everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        try:
            writer.write(request)
            await writer.drain()
        except ConnectionError:  # the server may close before taking all of it
            pass
        chunks: list[bytes] = []
        async with asyncio.timeout(within):
            while chunk := await reader.read(65_536):
                chunks.append(chunk)
        return b"".join(chunks)
    except ConnectionError:
        return b"".join(chunks)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    head = response.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) > 1 else 0


async def ws_exchange(
    server: Server, protocol: str, *messages: object, after_init: bool = False
) -> tuple[list[dict[str, Any]], int | None, str]:
    """Send ``messages`` (raw strings as they are, anything else as JSON).

    Returns the messages received until the server closes the socket or stays
    quiet for 2 s, the close code (None while open) and the close reason.
    """
    received: list[dict[str, Any]] = []
    async with connect(server.ws, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        if after_init:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_WITHIN))
            assert ack["type"] == "connection_ack", ack
        for message in messages:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 2.0)))
        except TimeoutError:
            return received, None, ""
        except ConnectionClosed as closed:
            frame = closed.rcvd
            return received, (frame.code if frame else None), (frame.reason if frame else "")
