"""Bounded work per request, through a real server process (HTTP and WebSocket).

Each hostile input is sent over real connections while another
client measures ``/healthz``: the hostile request must get its clear error
(status and ``extensions.code``) and the server must keep answering health
checks within 100 ms meanwhile (the median of the
samples taken while the hostile requests are in flight, with a loose ceiling
on every sample, so one scheduling hiccup of a busy machine does not fail it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from websockets.asyncio.client import connect

from runtime.embedded import EmbeddedMongo
from schema.limits import WATCHDOG, Limits
from tests.e2e.server import Server, running_server
from tests.wiring import make_wiring

pytestmark = pytest.mark.e2e

T = TypeVar("T")
HEALTHZ_WITHIN = 0.1  # seconds: the median while under attack
HEALTHZ_CEILING = 1.0  # no single sample may wait this long
MAX_SAMPLES = 500
MIN_SAMPLES = 3
RESPONSE_LIMIT = 4096
JSON_MEDIA = {"Accept": "application/json"}
GRAPHQL_MEDIA = {"Accept": "application/graphql-response+json"}

FRAGMENTS = "\n".join(
    ["fragment F0 on Query { __typename }"]
    + [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 21)]
    + ["{ ...F20 }"]
)
HISTORY = (
    "accountHistory(id: $id, first: 100) "
    "{ account { statement(first: 100) { edges { node { amount balance } } } } }"
)
HOSTILE_HISTORY = "query($id: ID!) { " + " ".join(f"a{i}: {HISTORY}" for i in range(10)) + " }"
HOSTILE_HISTORY_COST = 10 * (1 + 100 + 100 * (1 + (1 + 100 * 4)))
STATEMENT = (
    "statement(first: 100) "
    "{ edges { node { amount balance kind version position transferId recordedAt } } }"
)
COSTLY_SUBSCRIPTION = (
    'subscription { accountChanged(id: "x") { '
    + " ".join(f"s{i}: {STATEMENT}" for i in range(12))
    + " } }"
)
INTROSPECTION = "{ __schema { types { name description fields { name description } } } }"
OPEN = """mutation { openAccount(input: {owner: "bounded", currency: "EUR"}) {
  __typename ... on AccountPayload { accountId } } }"""
DEPOSIT = """mutation($id: ID!) { deposit(input: {accountId: $id, amount: "1.00"}) {
  __typename ... on AccountPayload { version } } }"""


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The real service with default limits except a small response bound."""
    env = {"MAX_RESPONSE_BYTES": str(RESPONSE_LIMIT)}
    with running_server(tmp_path_factory.mktemp("bounded"), embedded_mongo.url, env) as running:
        yield running


# -- helpers ---------------------------------------------------------------------------


async def healthz_during(server: Server, work: Awaitable[T]) -> tuple[T, list[float]]:
    """Run ``work`` while timing ``/healthz`` on its own connection, until ``work`` ends.

    At least ``MIN_SAMPLES`` are taken: work that ends sooner (a quick refusal
    on an idle machine) still leaves enough samples to judge, the first ones
    taken while it ran.
    """
    task = asyncio.ensure_future(work)
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.get(f"{server.url}/healthz")  # connect before measuring
            enough = False
            while not enough and len(latencies) < MAX_SAMPLES:
                started = time.perf_counter()
                response = await client.get(f"{server.url}/healthz")
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
                enough = task.done() and len(latencies) >= MIN_SAMPLES
                await asyncio.sleep(0.01)
        return await task, latencies
    finally:
        task.cancel()


def assert_healthy(latencies: list[float]) -> None:
    assert len(latencies) >= MIN_SAMPLES, latencies
    assert statistics.median(latencies) < HEALTHZ_WITHIN, latencies
    assert max(latencies) < HEALTHZ_CEILING, latencies


async def post_many(
    server: Server,
    body: dict[str, Any],
    *,
    count: int,
    concurrency: int = 2,
    headers: dict[str, str] | None = None,
) -> list[httpx.Response]:
    """``count`` POSTs of ``body``, ``concurrency`` at a time (bounded in count and time)."""
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> httpx.Response:
            return await client.post(server.http, json=body, headers=headers or JSON_MEDIA)

        responses: list[httpx.Response] = []
        for _ in range(count // concurrency):
            responses += await asyncio.gather(*(one() for _ in range(concurrency)))
        return responses


async def post(server: Server, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            server.http, json={"query": query, "variables": variables}, headers=JSON_MEDIA
        )
    assert response.status_code == 200, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


def code(body: dict[str, Any]) -> object:
    return body["errors"][0]["extensions"]["code"]


async def open_account(server: Server) -> str:
    body = await post(server, OPEN)
    assert body["data"]["openAccount"]["__typename"] == "AccountPayload", body
    return str(body["data"]["openAccount"]["accountId"])


async def ws_operation(
    server: Server, protocol: str, query: str, *, messages: int = 1
) -> list[dict[str, Any]]:
    """Start one operation over ``protocol``; the first ``messages`` answers to it."""
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    received: list[dict[str, Any]] = []
    async with connect(server.ws, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": query}}))
        while len(received) < messages:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message.get("type") != "ka":
                received.append(message)
    return received


# -- validation cost: refused before any super-linear work -----------------------------


async def test_an_exponential_fragment_chain_is_refused_while_healthz_answers(
    server: Server,
) -> None:
    assert 700 < len(FRAGMENTS.encode()) < 1_300  # a ~1.2 KB anonymous document
    body = {"query": FRAGMENTS}
    responses, latencies = await healthz_during(server, post_many(server, body, count=40))
    assert_healthy(latencies)
    for response in responses:
        assert response.status_code == 200
        answer = response.json()
        assert answer["data"] is None
        assert code(answer) == "QUERY_TOO_COSTLY"
        assert answer["errors"][0]["extensions"]["cost"] == 2**20
        assert answer["extensions"]["cost"] == {"requested": 2**20, "limit": 10_000}
    # A GraphQL-over-HTTP client is told "nothing ran" by the status.
    [refused] = await post_many(server, body, count=1, concurrency=1, headers=GRAPHQL_MEDIA)
    assert refused.status_code == 400
    assert code(refused.json()) == "QUERY_TOO_COSTLY"


# -- execution cost: priced before execution -------------------------------------------


async def test_the_issues_history_query_is_refused_with_its_cost(server: Server) -> None:
    account_id = await open_account(server)
    for _ in range(3):
        await post(server, DEPOSIT, id=account_id)
    body = {"query": HOSTILE_HISTORY, "variables": {"id": account_id}}
    responses, latencies = await healthz_during(server, post_many(server, body, count=20))
    assert_healthy(latencies)
    for response in responses:
        assert response.status_code == 200
        answer = response.json()
        assert code(answer) == "QUERY_TOO_COSTLY"
        error = answer["errors"][0]["extensions"]
        assert (error["cost"], error["limit"]) == (HOSTILE_HISTORY_COST, 10_000)
        assert len(response.content) < 2_000  # an error, not 4.5 MB

    small = "query($id: ID!) { accountHistory(id: $id, first: 10) { event { version } account { balance } } }"  # noqa: E501
    answer = await post(server, small, id=account_id)
    assert "errors" not in answer, answer
    assert [entry["account"]["balance"] for entry in answer["data"]["accountHistory"]] == [
        "0.00",
        "1.00",
        "2.00",
        "3.00",
    ]
    assert answer["extensions"]["cost"] == {"requested": 1 + 10 + 10 * 4, "limit": 10_000}


async def test_every_response_carries_its_cost(server: Server) -> None:
    account_id = await open_account(server)
    deposit = await post(server, DEPOSIT, id=account_id)
    assert deposit["data"]["deposit"]["version"] == 2
    assert deposit["extensions"]["cost"] == {"requested": 3, "limit": 10_000}
    ledger = await post(server, "{ ledger { currency } }")
    assert ledger["extensions"]["cost"] == {"requested": 2, "limit": 10_000}
    broken = await post(server, "{ ledger { ")
    assert broken["extensions"]["cost"] == {"requested": 0, "limit": 10_000}


# -- response size ---------------------------------------------------------------------


async def test_a_response_over_the_bound_is_a_clear_error_not_a_truncated_body(
    server: Server,
) -> None:
    answer = await post(server, INTROSPECTION)
    assert answer["data"] is None
    assert code(answer) == "RESPONSE_TOO_LARGE"
    details = answer["errors"][0]["extensions"]
    assert details["limit"] == RESPONSE_LIMIT
    assert details["size"] > RESPONSE_LIMIT
    assert answer["extensions"]["cost"]["requested"] > 0

    for protocol in ("graphql-transport-ws", "graphql-ws"):
        [message] = await ws_operation(server, protocol, INTROSPECTION)
        assert message["type"] in ("next", "data"), message
        assert message["payload"]["data"] is None
        assert code(message["payload"]) == "RESPONSE_TOO_LARGE"


# -- subscriptions ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_costly_subscription_is_refused_and_others_see_their_cost(
    server: Server, protocol: str
) -> None:
    [refused] = await ws_operation(server, protocol, COSTLY_SUBSCRIPTION)
    assert refused["type"] == "error", refused
    errors = refused["payload"] if isinstance(refused["payload"], list) else [refused["payload"]]
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert errors[0]["extensions"]["cost"] == 1 + 12 * (1 + 100 * 9)

    [first] = await ws_operation(server, protocol, "subscription { ledgerChanged { currency } }")
    assert first["type"] in ("next", "data"), first
    assert first["payload"]["extensions"]["cost"] == {"requested": 2, "limit": 10_000}


# -- per-request time ------------------------------------------------------------------


async def test_a_mutation_on_a_stopped_database_answers_unavailable_in_bounded_time(
    tmp_path: Path,
) -> None:
    timeout = 2.0
    env = {"REQUEST_TIMEOUT_SECONDS": str(timeout), "CONSISTENCY_TIMEOUT_SECONDS": "1"}
    with EmbeddedMongo(tmp_path / "nx") as database:
        assert database.process is not None
        pid = database.process.pid
        with running_server(tmp_path, database.url, env) as server:
            account_id = await open_account(server)
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                answer, latencies = await healthz_during(
                    server, post(server, DEPOSIT, id=account_id)
                )
                elapsed = time.monotonic() - started
            finally:
                os.kill(pid, signal.SIGCONT)
            assert code(answer) == "UNAVAILABLE", answer
            assert answer["data"] is None
            assert elapsed < timeout + 3.0, elapsed  # the bound, plus a busy machine's slack
            assert_healthy(latencies)
            # The database is back: the same request now succeeds (bounded retries).
            for _ in range(20):
                answer = await post(server, DEPOSIT, id=account_id)
                if "errors" not in answer:
                    break
                await asyncio.sleep(0.5)
            assert answer["data"]["deposit"]["__typename"] == "AccountPayload", answer


async def test_work_other_than_the_database_is_cut_off_with_timeout() -> None:
    # In process: a read-your-writes wait longer than the request may take.
    limits = Limits(request_timeout_seconds=0.2, consistency_timeout_seconds=30)
    wiring = await make_wiring(limits)
    result = await wiring.run('{ account(id: "a", consistency: {position: 1000000}) { id } }')
    assert result.data is None
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "TIMEOUT"}
    assert result.extensions is not None
    assert result.extensions["cost"]["requested"] == 2
    assert not WATCHDOG.deadlines
    assert not WATCHDOG.expired


async def test_a_request_cancelled_for_another_reason_stays_cancelled() -> None:
    # A client that goes away cancels its request: that is not turned into TIMEOUT.
    wiring = await make_wiring(Limits(request_timeout_seconds=30, consistency_timeout_seconds=30))
    query = '{ account(id: "a", consistency: {position: 1000000}) { id } }'
    task = asyncio.ensure_future(wiring.run(query))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not WATCHDOG.deadlines
    assert not WATCHDOG.expired


def test_deadlines_hold_on_an_event_loop_after_one_that_ended_with_the_timer_armed() -> None:
    """A timer armed on a loop that ended never fires: the next loop must arm its own."""

    async def left_armed() -> None:
        task = asyncio.current_task()
        assert task is not None
        WATCHDOG.watch(task, 30)  # the loop ends with this deadline and its timer pending
        WATCHDOG.unwatch(task)

    async def cut_off() -> bool:
        async def slow() -> None:
            await asyncio.sleep(5)

        task = asyncio.ensure_future(slow())
        WATCHDOG.watch(task, 0.05)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 3)
        return WATCHDOG.unwatch(task)

    asyncio.run(left_armed())
    assert asyncio.run(cut_off()) is True
