"""Hostile HTTP clients against a real server process.

Malformed bodies and query parameters, a subscription over HTTP, oversized
headers and clients that never finish their request: each gets a clear 4xx
(never a 500 or a traceback in the log) while ``/healthz`` keeps answering
within 100 ms, and slow clients are disconnected after the configured time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from runtime.embedded import EmbeddedMongo
from tests.e2e.server import Server, running_server
from tests.security.edge_support import raw_exchange, server_faults, status_of
from tests.security.test_bounded_work import assert_healthy, healthz_during

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0  # HEADER_TIMEOUT_SECONDS and BODY_TIMEOUT_SECONDS of the server under test
DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
LONG_NUMBER = "1" * 5000
TYPENAME = '"query": "{ __typename }"'
SUBSCRIPTION = "subscription { ledgerChanged { currency } }"


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "BODY_TIMEOUT_SECONDS": str(TIMEOUT)}
    with running_server(tmp_path_factory.mktemp("http-edge"), embedded_mongo.url, env) as running:
        yield running


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "null": (b"null", "must be a JSON object"),
    "string": (b'"x"', "must be a JSON object"),
    "number": (b"123", "must be a JSON object"),
    "deep body": (DEEP.encode(), "nested deeper than"),
    "deep object": (DEEP_OBJECT.encode(), "nested deeper than"),
    "deep variables": (f'{{{TYPENAME}, "variables": {{"a": {DEEP}}}}}'.encode(), "nested deeper"),
    "deep extensions": (f'{{{TYPENAME}, "extensions": {{"a": {DEEP}}}}}'.encode(), "nested deeper"),
    "invalid utf-8": (b'{"query": "{ __typename }", "x": "\xff\xfe"}', "not valid UTF-8"),
    "5,000 digits": (f'{{{TYPENAME}, "variables": {{"a": {LONG_NUMBER}}}}}'.encode(), "digits"),
    "lone surrogate": (f'{{{TYPENAME}, "variables": {{"a": "\\ud800"}}}}'.encode(), "surrogate"),
    "no query": (b'{"query": null}', "No GraphQL query"),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_malformed_bodies_get_400_with_the_reason(server: Server, name: str) -> None:
    body, reason = BAD_BODIES[name]
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(server.http, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert reason in response.text


async def test_malformed_get_parameters_get_400(server: Server) -> None:
    query = quote("{ __typename }")
    urls = [
        f"{server.http}?query={query}&variables={quote(DEEP)}",
        f"{server.http}?query={query}&extensions={quote(DEEP_OBJECT)}",
        f"{server.http}?query={query}&variables={quote(LONG_NUMBER)}",
        f"{server.http}?query={query}&variables=null",
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls:
            response = await client.get(url, headers={"accept": "application/json"})
            assert response.status_code == 400, (url[:80], response.text)


async def test_a_flood_of_malformed_bodies_leaves_healthz_fast_and_the_log_clean(
    server: Server,
) -> None:
    since = len(server.log())

    async def flood() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            statuses = []
            for _ in range(5):
                for body, _reason in BAD_BODIES.values():
                    response = await client.post(
                        server.http, content=body, headers={"content-type": "application/json"}
                    )
                    statuses.append(response.status_code)
            return statuses

    statuses, latencies = await healthz_during(server, flood())
    assert set(statuses) == {400}
    assert_healthy(latencies)
    assert server_faults(server, since) == []


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_subscription_over_http_is_told_to_use_a_websocket(
    server: Server, method: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        if method == "POST":
            response = await client.post(server.http, json={"query": SUBSCRIPTION})
        else:
            response = await client.get(server.http, params={"query": SUBSCRIPTION})
    assert response.status_code == 400
    assert "subscriptions need a WebSocket" in response.text


async def test_errors_carry_codes_and_client_mistakes_are_not_logged_as_errors(
    server: Server,
) -> None:
    since = len(server.log())
    cases = {
        "{ __typename ": "GRAPHQL_PARSE_FAILED",
        "{ nope }": "GRAPHQL_VALIDATION_FAILED",
        "query($n: Int!) { __typename }": "BAD_USER_INPUT",  # the variable is missing
        "{ accounts(first: 100000) { edges { cursor } } }": "BAD_USER_INPUT",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        for query, code in cases.items():
            response = await client.post(
                server.http, json={"query": query}, headers={"accept": "application/json"}
            )
            errors: list[dict[str, Any]] = response.json()["errors"]
            assert [e["extensions"]["code"] for e in errors] == [code], (query, errors)
    assert server_faults(server, since) == []
    assert "client error GRAPHQL_PARSE_FAILED" in server.log()[since:]


async def test_an_oversized_header_gets_431(server: Server) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8_000_000 + b"\r\n\r\n"
    response, latencies = await healthz_during(server, raw_exchange(server, big))
    assert status_of(response) == 431
    assert_healthy(latencies)
    normal = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert status_of(await raw_exchange(server, normal, within=5)) == 200


async def _held_for(server: Server, request: bytes) -> tuple[float, bytes]:
    started = time.monotonic()
    response = await raw_exchange(server, request, within=10 * TIMEOUT + 10)
    return time.monotonic() - started, response


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"",  # connects and says nothing
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # never ends its headers
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",  # never sends the body it declared
    ],
    ids=["silent", "unfinished headers", "unfinished body"],
)
async def test_fifty_slow_clients_are_disconnected_after_the_timeout(
    server: Server, request_bytes: bytes
) -> None:
    since = len(server.log())
    clients = asyncio.gather(*(_held_for(server, request_bytes) for _ in range(50)))
    results, latencies = await healthz_during(server, clients)
    for held, response in results:
        assert TIMEOUT * 0.8 <= held < TIMEOUT + 5, held
        assert status_of(response) == 408, response[:80]
    assert_healthy(latencies)
    assert server_faults(server, since) == []


async def test_a_websocket_outlives_the_request_deadlines(server: Server) -> None:
    """The head and body deadlines end with the upgrade: a WebSocket stays open past them."""
    protocol = Subprotocol("graphql-transport-ws")
    async with connect(server.ws, subprotocols=[protocol]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await asyncio.sleep(TIMEOUT * 2.5)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
