"""Tracing across the asynchronous path (``runtime/tracing.py``).

The app is served in-process by uvicorn (on the in-memory store) with tracing
turned on through the test hook ``tracing.configure(exporter=...)``: the SDK's
in-memory span exporter. One deposit, sent with a client ``traceparent`` while
a subscriber watches the account, must yield one connected trace holding the
request, the append, the projection and the push, and the stored commit must
carry it. The same path with tracing off stores the client's traceparent only.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from websockets.typing import Subprotocol

from application.service import trace_id_of, valid_traceparent
from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings
from projections.documents import InMemoryDocumentStore
from runtime import tracing
from runtime.bootstrap import create_app
from runtime.embedded import free_port
from runtime.settings import load_settings
from store.memory import InMemoryEventStore, InMemoryLeases
from store.protocol import NewEvent
from tests.projections.test_shared_log import Recorder
from tests.wiring import wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
OPEN = 'mutation { openAccount(input: {owner: "ana", currency: "EUR"}) { ... on AccountPayload { account { id } } } }'  # noqa: E501


async def _serve() -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(None, store="memory", port=free_port())
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


@pytest.fixture
async def traced(spans: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _serve():
        yield client


@pytest.fixture
async def untraced() -> AsyncIterator[httpx.AsyncClient]:
    assert not tracing.enabled()
    async for client in _serve():
        yield client


async def _graphql(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None
) -> Any:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _open(client: httpx.AsyncClient) -> str:
    return str((await _graphql(client, OPEN))["openAccount"]["account"]["id"])


def _deposit(account: str) -> str:
    return (
        f'mutation {{ deposit(input: {{accountId: "{account}", amount: "5.00"}}) '
        "{ ... on AccountPayload { account { version } } } }"
    )


async def _stored_trace_ids(client: httpx.AsyncClient, account: str) -> list[str | None]:
    query = f'{{ accountHistory(id: "{account}") {{ event {{ metadata {{ traceId }} }} }} }}'
    history = (await _graphql(client, query))["accountHistory"]
    return [entry["event"]["metadata"]["traceId"] for entry in history]


async def _finished(
    exporter: InMemorySpanExporter, trace_id: int, names: set[str]
) -> list[ReadableSpan]:
    """The trace's spans once every one of ``names`` has ended (bounded wait)."""
    found: list[ReadableSpan] = []
    for _ in range(100):
        found = [s for s in exporter.get_finished_spans() if _trace(s) == trace_id]
        if names <= {s.name for s in found}:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"missing {names - {s.name for s in found}} in {found}")


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, [s.name for s in spans]
    return matching[0]


def _ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[str]:
    """Names from ``span``'s parent up to the trace's root in ``spans``."""
    by_id = {_id(s): s for s in spans}
    names: list[str] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


async def test_one_deposit_is_one_trace_from_the_request_to_the_subscribers_push(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    account = await _open(traced)
    url = str(traced.base_url).replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = f'subscription {{ accountChanged(id: "{account}") {{ version }} }}'
        await ws.send(json.dumps({"id": "a", "type": "subscribe", "payload": {"query": query}}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["payload"]["data"]["accountChanged"]["version"] == 1

        deposited = await _graphql(traced, _deposit(account), {"traceparent": TRACEPARENT})
        assert deposited["deposit"]["account"]["version"] == 2
        pushed = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert pushed["payload"]["data"]["accountChanged"]["version"] == 2

    names = {"POST /graphql", "graphql.mutation", "command Deposit", "decide", "append",
             "consume accounts", "consume account_statement", "push account"}  # fmt: skip
    trace = await _finished(spans, int(TRACE_ID, 16), names)
    request = _one(trace, "POST /graphql")
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None
    assert request.parent.is_remote
    assert request.parent.span_id == int(CLIENT_SPAN, 16)  # the client's span
    # Connected: every other span's parent is in the trace, and the chain reaches the request.
    ids = {_id(s) for s in trace}
    for span in trace:
        if span is not request:
            assert span.parent is not None, span.name
            assert span.parent.span_id in ids, span.name
    append = _one(trace, "append")
    assert _ancestors(append, trace) == ["command Deposit", "graphql.mutation", "POST /graphql"]
    # Projection and push continue from the traceparent stored with the commit: the append's.
    projected = _one(trace, "consume accounts")
    assert projected.kind is SpanKind.CONSUMER
    assert projected.parent is not None
    assert projected.parent.span_id == _id(append)
    push = _one(trace, "push account")
    assert push.parent is not None
    assert push.parent.span_id == _id(append)
    assert push.attributes is not None
    assert push.attributes["ledger.subscribers"] == 1

    assert await _stored_trace_ids(traced, account) == [_trace_hex(_first_trace(spans)), TRACE_ID]


def _first_trace(exporter: InMemorySpanExporter) -> int:
    """The trace of the first command (the account's opening), started by the server."""
    opened = [s for s in exporter.get_finished_spans() if s.name == "command OpenAccount"]
    return _trace(opened[0])


def _trace_hex(trace_id: int) -> str:
    return f"{trace_id:032x}"


async def test_a_malformed_traceparent_is_ignored_and_the_request_starts_a_trace(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    account = await _open(traced)
    bad = f"00-{TRACE_ID.upper()}-{CLIENT_SPAN}-01"
    deposited = await _graphql(traced, _deposit(account), {"traceparent": bad})
    assert deposited["deposit"]["account"]["version"] == 2
    stored = (await _stored_trace_ids(traced, account))[-1]
    assert stored is not None
    assert stored != TRACE_ID.lower()
    trace = await _finished(spans, int(stored, 16), {"POST /graphql", "append"})
    assert _one(trace, "POST /graphql").parent is None


async def test_without_tracing_the_requests_traceparent_is_stored_as_sent(
    untraced: httpx.AsyncClient,
) -> None:
    account = await _open(untraced)
    await _graphql(untraced, _deposit(account), {"traceparent": TRACEPARENT})
    await _graphql(untraced, _deposit(account), {"traceparent": "00-" + "0" * 32 + "-x-01"})
    await _graphql(untraced, _deposit(account), {"traceparent": TRACEPARENT + "-more"})
    assert await _stored_trace_ids(untraced, account) == [None, TRACE_ID, None, None]


@pytest.mark.parametrize(
    "value",
    [
        "",
        TRACEPARENT.upper(),
        TRACEPARENT[:-1],
        TRACEPARENT + "0",
        "ff" + TRACEPARENT[2:],
        f"00-{'0' * 32}-{CLIENT_SPAN}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00_{TRACE_ID}-{CLIENT_SPAN}-01",
        "x" * 10_000,
    ],
)
def test_malformed_traceparents_are_refused(value: str) -> None:
    assert valid_traceparent(value) is None
    assert trace_id_of(value) is None


def test_well_formed_traceparents_name_their_trace() -> None:
    assert valid_traceparent(TRACEPARENT) == TRACEPARENT
    assert trace_id_of(TRACEPARENT) == TRACE_ID
    assert trace_id_of(None) is None


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
         False),
    ],
)  # fmt: skip
def test_tracing_is_on_only_when_the_environment_names_an_exporter(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing.wanted(environ) is on
    assert not tracing.enabled()
    try:
        assert tracing.configure(environ) is on
        assert tracing.enabled() is on
    finally:
        tracing.shutdown()


WITHOUT_THE_PACKAGE = f"""
import sys


class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ImportError(name)


sys.meta_path.insert(0, NoOpenTelemetry())
import runtime.bootstrap  # the whole wiring imports
from runtime import tracing

assert not tracing.AVAILABLE
assert not tracing.configure({{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}})
assert not tracing.enabled()
handlers = [object()]
assert tracing.traced_handlers(handlers) == handlers
assert tracing.request({{}}, None) is None
request = tracing.request({{}}, b"{TRACEPARENT}")
assert tracing.current_traceparent() == "{TRACEPARENT}"
request.end(200)
assert tracing.current_traceparent() is None
print("off")
"""


def test_without_the_package_tracing_is_off_and_only_the_header_is_kept() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_PACKAGE],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "off"


async def test_a_rejected_command_is_an_outcome_of_its_span_not_a_failure(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    account = await _open(traced)
    withdraw = (
        f'mutation {{ withdraw(input: {{accountId: "{account}", amount: "99.00"}}) '
        "{ __typename } }"
    )
    answer = await _graphql(traced, withdraw, {"traceparent": TRACEPARENT})
    assert answer["withdraw"]["__typename"] == "InsufficientFunds"
    trace = await _finished(spans, int(TRACE_ID, 16), {"command Withdraw", "POST /graphql"})
    command = _one(trace, "command Withdraw")
    assert command.attributes is not None
    assert command.attributes["ledger.outcome"] == "InsufficientFunds"
    assert command.status.status_code is StatusCode.UNSET
    assert _one(trace, "POST /graphql").attributes == {
        "http.request.method": "POST",
        "url.path": "/graphql",
        "http.response.status_code": 200,
    }


async def test_request_spans_are_named_by_route_never_by_the_path_sent(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    headers = {"traceparent": TRACEPARENT}
    for path in ("/healthz", "/nowhere/" + "x" * 500, "/graphql/deep"):
        await traced.get(path, headers=headers)
    await traced.request("PROPFIND", "/graphql", headers=headers)
    names = {"GET /healthz", "GET other", "GET /graphql", "_OTHER /graphql"}
    trace = await _finished(spans, int(TRACE_ID, 16), names)
    assert {s.name for s in trace} == names
    long = _one(trace, "GET other")
    assert long.attributes is not None
    assert long.attributes["url.path"] == ("/nowhere/" + "x" * 500)[: tracing.MAX_PATH]


async def test_a_traced_consumer_skips_the_batches_its_handler_ignores(
    spans: InMemorySpanExporter,
) -> None:
    store = InMemoryEventStore()
    recorder = Recorder("picky", accepted="Wanted")
    (handler,) = tracing.traced_handlers([recorder])
    assert isinstance(handler, tracing.TracedHandler)
    checkpoints = CheckpointStore(InMemoryDocumentStore())
    settings = ConsumerSettings(poll_interval=0.01, lease_ttl=60.0)
    consumer = Consumer(handler, store, checkpoints, InMemoryLeases(), settings=settings)

    async def append(kind: str) -> None:
        version = await store.stream_version("s")
        await store.append("s", "t", version, [NewEvent(kind + str(version), kind, {})])

    def consumed() -> list[int]:
        return [
            int(str((s.attributes or {})["ledger.batch.first_position"]))
            for s in spans.get_finished_spans()
            if s.name == "consume picky"
        ]

    consumer.start()
    try:
        for _ in range(3):
            await append("Ignored")
        await wait_for(lambda: consumer.position == 3)
        assert recorder.positions == []  # not handed over, so no span either
        assert consumed() == []
        assert (await checkpoints.load("picky")).position == 0  # the skipped write is held back
        await append("Wanted")
        await wait_for(lambda: recorder.positions == [4])
        assert consumed() == [4]
    finally:
        await consumer.stop()
