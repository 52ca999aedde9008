"""Hostile WebSocket clients against a real server process, on both subprotocols.

Invalid messages close the socket with 4400 and the reason; a socket without
``connection_init`` is closed with 4408; a second ``connection_init`` with
4429; documents that do not parse or validate are answered with the
protocol's ``error`` message; queries and mutations work over the legacy
protocol too. Meanwhile ``/healthz`` answers within 100 ms and the server logs
no error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from runtime.embedded import EmbeddedMongo
from tests.e2e.server import Server, running_server
from tests.security.edge_support import server_faults, ws_exchange
from tests.security.test_bounded_work import assert_healthy, healthz_during

pytestmark = pytest.mark.e2e

TRANSPORT, LEGACY = "graphql-transport-ws", "graphql-ws"
PROTOCOLS = [TRANSPORT, LEGACY]
INIT_TIMEOUT = 1.0
START = {TRANSPORT: "subscribe", LEGACY: "start"}
SUBSCRIPTION = "subscription { ledgerChanged { currency } }"


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"CONNECTION_INIT_TIMEOUT_SECONDS": str(INIT_TIMEOUT)}
    with running_server(tmp_path_factory.mktemp("ws-edge"), embedded_mongo.url, env) as running:
        yield running


def _invalid(protocol: str) -> dict[str, object]:
    start = START[protocol]
    return {
        "null": "null",
        "list": "[1,2]",
        "number": "42",
        "not json": "{not json",
        "deep": "[" * 1000 + "]" * 1000,
        "string payload": {"type": start, "id": "1", "payload": "x"},
        "no id": {"type": start, "payload": {"query": SUBSCRIPTION}},
        "no query": {"type": start, "id": "1", "payload": {}},
        "bad variables": {"type": start, "id": "1", "payload": {"query": "{ a }", "variables": 1}},
        "unknown type": {"type": "launch", "id": "1"},
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_invalid_messages_close_with_4400(server: Server, protocol: str) -> None:
    since = len(server.log())

    async def all_cases() -> dict[str, tuple[int | None, str]]:
        outcome = {}
        for name, message in _invalid(protocol).items():
            _, code, reason = await ws_exchange(server, protocol, message, after_init=True)
            outcome[name] = (code, reason)
        return outcome

    outcome, latencies = await healthz_during(server, all_cases())
    assert {name: code for name, (code, _) in outcome.items()} == dict.fromkeys(outcome, 4400)
    assert all(reason for _, reason in outcome.values()), outcome
    assert_healthy(latencies)
    assert server_faults(server, since) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_invalid_messages_before_init_close_with_4400_too(
    server: Server, protocol: str
) -> None:
    for message in ("null", "[1,2]", "42", "[" * 1000 + "]" * 1000):
        _, code, _ = await ws_exchange(server, protocol, message)
        assert code == 4400, message[:10]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fifty_sockets_without_init_are_closed_with_4408(
    server: Server, protocol: str
) -> None:
    since = len(server.log())
    sockets = asyncio.gather(*(ws_exchange(server, protocol) for _ in range(50)))
    results, latencies = await healthz_during(server, sockets)
    assert [code for _, code, _ in results] == [4408] * 50
    assert_healthy(latencies)
    assert server_faults(server, since) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_second_connection_init_closes_with_4429(server: Server, protocol: str) -> None:
    init = {"type": "connection_init", "payload": {"token": "another identity"}}
    received, code, _ = await ws_exchange(server, protocol, init, init, init, after_init=True)
    assert code == 4429
    assert [m["type"] for m in received] == []  # no second acknowledgement


def _error_payload(protocol: str, message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "error", message
    payload = message["payload"]
    first: dict[str, Any] = payload[0] if protocol == TRANSPORT else payload
    return first


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("subscription { ", "GRAPHQL_PARSE_FAILED"),
        ("subscription { nope }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "subscription { ledgerChanged { " + "currency " * 3000 + "} }",
            "GRAPHQL_PARSE_FAILED",  # over the token limit
        ),
    ],
    ids=["syntax", "validation", "tokens"],
)
async def test_a_bad_document_gets_an_error_message_and_the_socket_stays_open(
    server: Server, protocol: str, query: str, code: str
) -> None:
    start = {"type": START[protocol], "id": "1", "payload": {"query": query}}
    received, close_code, _ = await ws_exchange(server, protocol, start, after_init=True)
    assert close_code is None  # still open
    assert len(received) == 1, received
    error = _error_payload(protocol, received[0])
    assert error["message"]
    assert error["extensions"]["code"] == code


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_queries_and_mutations_work_over_both_protocols(
    server: Server, protocol: str
) -> None:
    mutation = (
        'mutation { openAccount(input: {owner: "ws", currency: "EUR"}) '
        "{ __typename ... on AccountPayload { accountId } } }"
    )
    messages = [
        {"type": START[protocol], "id": "q", "payload": {"query": "{ __typename }"}},
        {"type": START[protocol], "id": "m", "payload": {"query": mutation}},
    ]
    received, close_code, _ = await ws_exchange(server, protocol, *messages, after_init=True)
    assert close_code is None
    data = {m["id"]: m["payload"]["data"] for m in received if m["type"] in ("next", "data")}
    assert data["q"] == {"__typename": "Query"}
    assert data["m"]["openAccount"]["__typename"] == "AccountPayload"
    completed = {m["id"] for m in received if m["type"] == "complete"}
    assert completed == {"q", "m"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_clean_close_with_live_subscriptions_logs_no_error(
    server: Server, protocol: str
) -> None:
    """Closing the socket cancels its subscriptions; their last sends find it closed."""
    since = len(server.log())
    for _ in range(5):
        async with connect(server.ws, subprotocols=[Subprotocol(protocol)]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for op_id in ("1", "2", "3"):
                start = {"type": START[protocol], "id": op_id, "payload": {"query": SUBSCRIPTION}}
                await ws.send(json.dumps(start))
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the server notices and ends the operations
    assert server_faults(server, since) == []
