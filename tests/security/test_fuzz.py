"""Fuzzing the GraphQL endpoint of a real server process over HTTP and both WebSocket protocols.

Random JSON shapes (as whole bodies, as ``variables``, as WebSocket messages)
and random GraphQL documents built from the schema by ``hypothesis-graphql``,
valid ones and ones with a single schema violation. Whatever arrives: no 5xx,
no WebSocket closed without a protocol code (1006, 1011), every error in a
response carries ``extensions.code`` and none is ``INTERNAL_SERVER_ERROR``,
and the server's log reports no fault.

``make test`` runs a reduced form (``EXAMPLES``); ``make test-slow`` a longer
one (``SLOW_EXAMPLES``, each fuzzer bounded by ``SLOW_TIMEOUT``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from runtime.embedded import EmbeddedMongo
from tests.e2e.server import Server, running_server
from tests.security.edge_support import server_faults

pytestmark = pytest.mark.e2e

EXAMPLES = 20
SLOW_EXAMPLES = 400
SLOW_TIMEOUT = 1_800  # seconds per fuzzer in make test-slow (the default per test is 180)
SDL = (Path(__file__).resolve().parents[2] / "schema" / "schema.graphql").read_text()
PROTOCOL_CLOSE_CODES = {1000, 4400, 4401, 4403, 4408, 4409, 4429}
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
PROTOCOL_KEYS = st.sampled_from(["type", "id", "payload", "query", "variables", "operationName"])
MESSAGES = st.one_of(
    JSON_VALUES,
    st.dictionaries(PROTOCOL_KEYS, JSON_VALUES, max_size=4),
    st.builds(
        lambda kind, payload: {"type": kind, "id": "1", "payload": payload},
        st.sampled_from(["subscribe", "start", "complete", "stop", "ping", "connection_init"]),
        JSON_VALUES,
    ),
)
SCALARS = {
    "Decimal": st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{1,3})?", fullmatch=True).map(nodes.String),
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
    "JSON": st.text(max_size=10).map(nodes.String),
}
DOCUMENTS = st.one_of(
    from_schema(SDL, custom_scalars=SCALARS),
    from_schema(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE),
)
FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("fuzz"), embedded_mongo.url) as running:
        yield running


def _check_response(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:300]
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        errors = body.get("errors") or [] if isinstance(body, dict) else []
        for error in errors:
            code = error.get("extensions", {}).get("code")
            assert code, error
            assert code != "INTERNAL_SERVER_ERROR", error


def _check_socket(server: Server, protocol: str, message: object) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    with connect(server.ws, subprotocols=[protocol], open_timeout=10) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(text)
        try:
            while True:
                reply = json.loads(ws.recv(timeout=0.3))
                for error in _errors_of(reply):
                    assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"
        except TimeoutError:
            return  # still open: the message was taken
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            assert code in PROTOCOL_CLOSE_CODES, (code, text[:200])


def _errors_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    payload = reply.get("payload")
    if reply.get("type") == "error":
        return payload if isinstance(payload, list) else [payload or {}]
    if isinstance(payload, dict):
        return list(payload.get("errors") or [])
    return []


def fuzz_http_json(server: Server, examples: int) -> None:
    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(body=JSON_VALUES, variables=JSON_VALUES)
    def run(body: object, variables: object) -> None:
        with httpx.Client(timeout=30) as client:
            _check_response(client.post(server.http, content=json.dumps(body).encode(),
                                        headers={"content-type": "application/json"}))  # fmt: skip
            # json.dumps writes NaN and Infinity as Python's decoder reads them.
            query = {"query": "query($a: String) { __typename }", "variables": variables}
            _check_response(client.post(server.http, content=json.dumps(query).encode(),
                                        headers={"content-type": "application/json"}))  # fmt: skip

    run()


def fuzz_websocket_messages(server: Server, examples: int) -> None:
    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(protocol=st.sampled_from(list(START)), message=MESSAGES)
    def run(protocol: str, message: object) -> None:
        _check_socket(server, protocol, message)

    run()


def fuzz_documents(server: Server, examples: int) -> None:
    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(document=DOCUMENTS, protocol=st.sampled_from(list(START)))
    def run(document: str, protocol: str) -> None:
        with httpx.Client(timeout=30) as client:
            _check_response(client.post(server.http, json={"query": document}))
        start = {"type": START[protocol], "id": "f", "payload": {"query": document}}
        _check_socket(server, protocol, start)

    run()


FUZZERS = [fuzz_http_json, fuzz_websocket_messages, fuzz_documents]


@pytest.mark.parametrize("fuzz", FUZZERS, ids=lambda f: f.__name__)
def test_fuzz(server: Server, fuzz: Any) -> None:
    since = len(server.log())
    fuzz(server, EXAMPLES)
    assert server_faults(server, since) == []


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT)
@pytest.mark.parametrize("fuzz", FUZZERS, ids=lambda f: f.__name__)
def test_fuzz_long(server: Server, fuzz: Any) -> None:
    since = len(server.log())
    fuzz(server, SLOW_EXAMPLES)
    assert server_faults(server, since) == []
