"""The real server refuses bad HTTP bodies and WebSocket protocol violations clearly,
and keeps serving afterwards."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

TYPENAME = {"query": "{ __typename }"}


async def still_serving(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(server.http, json=TYPENAME)
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"query": 42}', "application/json", 400),
        (b"{ __typename }", "text/plain", 400),
        (b"<xml/>", "application/xml", 400),
        (b"", "application/json", 400),
        (b'{"query": "' + b"x" * 3_000_000 + b'"}', "application/json", 413),
    ],
)
async def test_bad_http_bodies(
    server: Server, content: bytes, content_type: str, status: int
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            server.http, content=content, headers={"Content-Type": content_type}
        )
    assert response.status_code == status, response.text[:200]
    assert response.text
    await still_serving(server)


async def test_syntax_errors_and_validation_errors_are_200_with_errors(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        broken = await client.post(server.http, json={"query": "mutation { deposit(input: {"})
        unknown = await client.post(server.http, json={"query": "{ nothing }"})
    for response in (broken, unknown):
        assert response.status_code in (200, 400)
        assert response.json()["errors"][0]["message"]
    await still_serving(server)


async def closed_code(server: Server, protocol: str, *messages: object) -> int | None:
    """Send ``messages`` raw and return the close code the server answers with."""
    async with connect(server.ws, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        for message in messages:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_websocket_protocol_violations_close_the_socket(server: Server) -> None:
    transport = "graphql-transport-ws"
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": "subscription { ledgerChanged { currency } }"},
    }
    assert await closed_code(server, transport, "not json at all") == 4400
    assert await closed_code(server, transport, {"type": "no-such-type"}) == 4400
    assert await closed_code(server, transport, subscribe) == 4401
    init = {"type": "connection_init"}
    assert await closed_code(server, transport, init, init) == 4429
    await still_serving(server)


async def test_websocket_without_init_times_out(server: Server) -> None:
    async with connect(server.ws, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408
    await still_serving(server)


async def test_unknown_websocket_subprotocol_is_refused(server: Server) -> None:
    assert await closed_code(server, "bogus") == 4406
    await still_serving(server)


async def test_subscriptions_per_connection_are_limited(server: Server) -> None:
    query = "subscription { ledgerChanged { currency } }"
    async with connect(server.ws, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        for operation in ("1", "2", "3"):
            message = {"id": operation, "type": "subscribe", "payload": {"query": query}}
            await ws.send(json.dumps(message))
        refused = None
        for _ in range(20):
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] == "error":
                refused = message
                break
        assert refused is not None
        assert refused["id"] == "3"
        assert "limit" in json.dumps(refused["payload"]).lower()
    await still_serving(server)
