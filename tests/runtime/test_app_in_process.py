"""``create_app`` served in-process by uvicorn on the in-memory store.

Middleware (request ids, body limit), metrics (commands, GraphQL operations,
WebSocket connections and subscriptions), readiness and the WebSocket lane, over
a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
import types
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from websockets.typing import Subprotocol

from runtime.bootstrap import create_app
from runtime.embedded import free_port
from runtime.logging import request_id_var
from runtime.settings import load_settings

OPEN = 'mutation { openAccount(input: {owner: "ana", currency: "EUR"}) { ... on AccountPayload { account { id } } } }'  # noqa: E501


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        None, store="memory", max_body_bytes=2048, port=free_port(), metrics_operation_names="Named"
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port,
                            log_config=None, lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as http:
            yield http
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _graphql(client: httpx.AsyncClient, query: str) -> Any:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    return response.json()


async def _metric(client: httpx.AsyncClient, line_start: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _open(client: httpx.AsyncClient) -> str:
    return str((await _graphql(client, OPEN))["data"]["openAccount"]["account"]["id"])


async def test_ready_on_the_memory_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert "database" not in response.json()["checks"]


async def test_request_ids_are_kept_or_made(client: httpx.AsyncClient) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "req-42"})
    assert kept.headers["x-request-id"] == "req-42"
    made = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_oversized_bodies_get_413_and_the_server_keeps_serving(
    client: httpx.AsyncClient,
) -> None:
    big = {"query": "{ __typename }", "variables": {"pad": "x" * 4096}}
    assert (await client.post("/graphql", json=big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while streaming
        for _ in range(4):
            yield b"x" * 1024

    headers = {"content-type": "application/json"}
    streamed = await client.post("/graphql", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert (await _graphql(client, "{ __typename }"))["data"] == {"__typename": "Query"}


async def test_commands_and_operations_are_counted(client: httpx.AsyncClient) -> None:
    account = await _open(client)
    deposit = f'mutation {{ deposit(input: {{accountId: "{account}", amount: "5.00"}}) {{ __typename }} }}'  # noqa: E501
    assert (await _graphql(client, deposit))["data"]["deposit"]["__typename"] == "AccountPayload"
    withdraw = deposit.replace("deposit", "withdraw").replace("5.00", "99.00")
    rejected = await _graphql(client, withdraw)
    assert rejected["data"]["withdraw"]["__typename"] == "InsufficientFunds"
    assert await _metric(client, 'ledger_commands_total{outcome="ok",type="Deposit"}') == 1
    assert await _metric(client, 'ledger_commands_total{outcome="rejected",type="Withdraw"}') == 1
    assert await _metric(client, 'ledger_append_seconds_count{stream_type="account"}') == 2
    await _graphql(client, "query Named { __typename }")
    assert await _metric(client, 'ledger_graphql_operations_total{name="Named",outcome="ok"') == 1
    await client.post("/graphql", json={"query": "{ nope }"})
    errors = 'ledger_graphql_operations_total{name="other",outcome="error"'
    assert await _metric(client, errors) >= 1
    # Names not configured are labelled by the root field, or "other": a bounded set.
    for fresh in range(20):
        await _graphql(client, f"query Fresh{fresh} {{ __typename }}")
        await _graphql(client, f"query Sneaky{fresh} {{ ledger {{ currency }} }}")
    text = (await client.get("/metrics")).text
    assert "Fresh" not in text
    assert "Sneaky" not in text
    assert await _metric(client, 'ledger_graphql_operations_total{name="ledger",outcome="ok"') == 20


async def _calls_while(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, set[str]]:
    """The response, and the qualified names of the functions this thread called for it."""
    called: set[str] = set()

    def record(frame: types.FrameType, event: str, _: object) -> None:
        if event == "call":
            called.add(frame.f_code.co_qualname)

    sys.setprofile(record)
    try:
        response = await request
    finally:
        sys.setprofile(None)
    return response, called


async def test_graphql_requests_take_the_lane_past_starlettes_layers(
    client: httpx.AsyncClient,
) -> None:
    """``/graphql`` goes from ``ServiceApp`` to the runtime middleware and the GraphQL app;
    other paths (here ``/healthz``) still go through Starlette's middleware and router."""
    response, called = await _calls_while(client.post("/graphql", json={"query": "{ __typename }"}))
    assert response.status_code == 200
    assert response.headers["x-request-id"]  # the runtime middleware ran
    assert {"ServiceApp.__call__", "RuntimeMiddleware._http", "GraphQL.__call__"} <= called
    # The configured CORS middleware stays in the HTTP lane (it answers preflights).
    assert called & (STARLETTE_LAYERS - {"CORSMiddleware.__call__"}) == set()
    response, called = await _calls_while(client.get("/healthz"))
    assert response.status_code == 200
    assert {"ServiceApp.__call__", "Router.__call__", "ExceptionMiddleware.__call__"} <= called


@contextlib.asynccontextmanager
async def _subscribed(
    client: httpx.AsyncClient,
    account: str,
    selection: str = "version",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[websockets.ClientConnection, Any]]:
    """A graphql-transport-ws connection subscribed to ``accountChanged(account)`` (id "a"),
    and the first message it got."""
    url = str(client.base_url).replace("http", "ws") + "/graphql"
    protocol = [Subprotocol("graphql-transport-ws")]
    async with websockets.connect(url, subprotocols=protocol, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = f'subscription {{ accountChanged(id: "{account}") {{ {selection} }} }}'
        await ws.send(json.dumps({"id": "a", "type": "subscribe", "payload": {"query": query}}))
        yield ws, json.loads(await ws.recv())


async def test_websocket_connections_and_subscriptions_are_counted(
    client: httpx.AsyncClient,
) -> None:
    async with _subscribed(client, await _open(client)) as (ws, first):
        assert first["payload"]["data"]["accountChanged"]["version"] == 1
        assert await _metric(client, "ledger_websocket_connections ") == 1
        assert await _metric(client, "ledger_subscriptions ") == 1
        await ws.send(json.dumps({"id": "a", "type": "complete"}))
        await _settle(client, "ledger_subscriptions ", 0)
    await _settle(client, "ledger_websocket_connections ", 0)


STARLETTE_LAYERS = {
    "Starlette.__call__",
    "ServerErrorMiddleware.__call__",
    "CORSMiddleware.__call__",
    "ExceptionMiddleware.__call__",
    "Router.__call__",
    "Router.app",
    "WebSocketRoute.handle",
}


def _suspended_coroutines() -> set[str]:
    gc.collect()
    return {
        o.__qualname__
        for o in gc.get_objects()
        if type(o) is types.CoroutineType and o.cr_frame is not None
    }


async def test_graphql_websockets_take_the_lane_past_starlettes_layers(
    client: httpx.AsyncClient,
) -> None:
    """An idle subscriber's connection runs through the runtime middleware into the
    GraphQL app and keeps no frame of Starlette's router or middleware
    (``runtime.bootstrap.ServiceApp``); a WebSocket to another path still meets the router."""
    async with _subscribed(client, await _open(client)) as (_, first):
        assert first["type"] == "next"
        waiting = _suspended_coroutines()
        assert {"ServiceApp.__call__", "RuntimeMiddleware._websocket"} <= waiting
        assert "GraphQL.__call__" in waiting
        assert waiting & STARLETTE_LAYERS == set()
    url = str(client.base_url).replace("http", "ws") + "/graphql/other"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]):
            pass
    assert refused.value.response.status_code == 403  # Starlette's router: no such route


async def _settle(client: httpx.AsyncClient, metric: str, value: float) -> None:
    for _ in range(100):
        if await _metric(client, metric) == value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{metric} never became {value}")


class _RequestIds(logging.Handler):
    """The request id bound while each record was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(request_id_var.get())


async def test_what_a_parked_subscription_logs_carries_its_connections_request_id(
    client: httpx.AsyncClient,
) -> None:
    """A change is sent from a task the hub starts, in the subscriber's own context."""
    account = await _open(client)
    ids = _RequestIds()
    logger = logging.getLogger("schema.masking")  # logs each client error of a result
    level = logger.level
    logger.addHandler(ids)
    logger.setLevel(logging.INFO)
    bad_page = 'version statement(first: 1, after: "not-a-cursor") { edges { cursor } }'
    try:
        headers = {"x-request-id": "ws-push-1"}
        async with _subscribed(client, account, bad_page, headers) as (ws, first):
            assert first["payload"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            await asyncio.sleep(0.2)  # parked
            deposit = f'mutation {{ deposit(input: {{accountId: "{account}", amount: "1"}}) {{ __typename }} }}'  # noqa: E501
            await _graphql(client, deposit)
            pushed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert pushed["payload"]["errors"] == first["payload"]["errors"]
    finally:
        logger.removeHandler(ids)
        logger.setLevel(level)
    assert ids.seen == ["ws-push-1", "ws-push-1"]  # the set-up's result, then the push's
