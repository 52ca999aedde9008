"""What an anonymous caller can grow or learn, against a real server process.

``/metrics`` series stay a bounded set however many operation names clients
invent; ``METRICS_TOKEN`` guards ``/metrics`` and the ``/readyz`` details
(lease owners); with introspection off, error messages drop "Did you mean".
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runtime.embedded import EmbeddedMongo
from tests.e2e.server import Server, running_server
from tests.security.edge_support import server_faults
from tests.security.test_bounded_work import assert_healthy, healthz_during

pytestmark = pytest.mark.e2e

TOKEN = "scrape-token-for-the-exposure-tests"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
FRESH_NAMES = 300  # operation names never seen before, each a would-be set of new series


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"METRICS_TOKEN": TOKEN, "INTROSPECTION": "false", "METRICS_OPERATION_NAMES": "Known"}
    with running_server(tmp_path_factory.mktemp("exposure"), embedded_mongo.url, env) as running:
        yield running


def _series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("ledger_")}


async def test_fresh_operation_names_make_no_new_series(server: Server) -> None:
    since = len(server.log())
    async with httpx.AsyncClient(timeout=10) as client:

        async def send(name: str) -> None:
            for query in (
                f"query {name} {{ __typename }}",
                f"query {name} {{ ledger {{ currency }} }}",
            ):
                await client.post(server.http, json={"query": query, "operationName": name})
            await client.post(server.http, json={"query": f"query {name} {{ nope }}"})

        await send("Warmup")
        await send("Known")
        await client.get(f"{server.url}/healthz")  # its series too exist before the flood
        await client.get(f"{server.url}/metrics", headers=OPERATOR)
        before = _series((await client.get(f"{server.url}/metrics", headers=OPERATOR)).text)

        async def flood() -> None:
            for number in range(FRESH_NAMES):
                await send(f"Fresh{number}")

        _, latencies = await healthz_during(server, flood())
        after = (await client.get(f"{server.url}/metrics", headers=OPERATOR)).text
    assert _series(after) == before
    assert "Fresh" not in after
    assert 'name="Known"' in after  # configured names are kept
    assert 'name="ledger"' in after  # the rest by root field
    assert_healthy(latencies)
    assert server_faults(server, since) == []


async def test_metrics_need_the_token(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.get(f"{server.url}/metrics")
        wrong = await client.get(f"{server.url}/metrics", headers={"authorization": "Bearer x"})
        operator = await client.get(f"{server.url}/metrics", headers=OPERATOR)
    assert (anonymous.status_code, wrong.status_code, operator.status_code) == (401, 401, 200)
    assert "ledger_" not in anonymous.text
    assert "ledger_http_requests_total" in operator.text


async def test_readyz_shows_lease_owners_only_to_the_operator(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.get(f"{server.url}/readyz")
        operator = await client.get(f"{server.url}/readyz", headers=OPERATOR)
    assert anonymous.status_code == operator.status_code == 200
    checks = anonymous.json()["checks"]
    assert checks
    assert all(check == {"ok": True} for check in checks.values()), checks
    assert "lease" not in anonymous.text
    assert "lease" in operator.text  # "lease held by <owner>", "leased by <owner>"


async def test_no_suggestions_reveal_the_schema_when_introspection_is_off(
    server: Server,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server.http,
            json={"query": "{ accounts { edgs } }"},
            headers={"accept": "application/json"},
        )
        introspection = await client.post(
            server.http, json={"query": "{ __schema { types { name } } }"}
        )
    error = response.json()["errors"][0]
    assert error["message"] == "Cannot query field 'edgs' on type 'AccountConnection'."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "__schema" not in introspection.text or introspection.json().get("data") is None
