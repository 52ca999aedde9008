"""GraphQL over HTTP: both response media types, raw, and graphql-http's audit suite.

The audit (npm ``graphql-http``, ``serverAudits``) runs in node against the
service served by uvicorn; every audit must pass, warnings included.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schema.graphql_http import GRAPHQL_RESPONSE_JSON, JSON, response_media
from tests.frontend.node_support import HERE, node, node_modules
from tests.frontend.serving import served
from tests.ops.browser_support import Unavailable

GRAPHQL_ACCEPT = {"accept": GRAPHQL_RESPONSE_JSON}
AUDIT_TIMEOUT_SECONDS = 120


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with served() as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0", JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=nonsense", JSON),
        (f"{GRAPHQL_RESPONSE_JSON.upper()} ; charset=utf-8", GRAPHQL_RESPONSE_JSON),
        ("x" * 5000 + f",{GRAPHQL_RESPONSE_JSON}", JSON),
    ],
)
def test_the_media_type_follows_accept(accept: str | None, media: str) -> None:
    assert response_media(accept) == media


async def _post(http: httpx.AsyncClient, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{"},  # does not parse
        {"query": "{ noSuchField }"},  # does not validate
        {"query": "query($id: ID!) { account(id: $id) { id } }", "variables": {"id": 7.5}},
        {"query": "query($id: ID!) { account(id: $id) { id } }"},  # variable missing
    ],
)
async def test_request_errors_are_400_without_data(http: httpx.AsyncClient, body: Any) -> None:
    strict = await _post(http, body, GRAPHQL_ACCEPT)
    assert strict.status_code == 400, strict.text
    assert strict.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
    assert "data" not in strict.json()
    assert strict.json()["errors"]

    legacy = await _post(http, body, {"accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None


async def test_an_executed_operation_is_200_with_data(http: httpx.AsyncClient) -> None:
    ok = await _post(http, {"query": "{ __typename }"}, GRAPHQL_ACCEPT)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    assert ok.json()["data"] == {"__typename": "Query"}
    # A field error is not a request error: the operation ran.
    bad_page = {"query": "{ accounts(first: 0) { edges { cursor } } }"}
    page = await _post(http, bad_page, GRAPHQL_ACCEPT)
    assert page.status_code == 200
    assert "data" in page.json()
    assert page.json()["errors"][0]["path"] == ["accounts"]


async def test_get_queries_negotiate_too(http: httpx.AsyncClient) -> None:
    answer = await http.get("/graphql", params={"query": "{ nope }"}, headers=GRAPHQL_ACCEPT)
    assert answer.status_code == 400
    assert "data" not in answer.json()


async def _audit(url: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        node(), str(HERE / "audit.cjs"), url,
        env={**os.environ, "NODE_PATH": str(node_modules() / "node_modules")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), AUDIT_TIMEOUT_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    results: list[dict[str, Any]] = json.loads(out)
    return results


async def test_the_graphql_http_audit_passes_without_warnings() -> None:
    try:
        node_modules()
    except Unavailable as reason:
        pytest.skip(str(reason))
    async with served() as url:
        results = await _audit(url + "/graphql")
    assert len(results) > 50  # the suite ran
    failed = [f"{r['status']} {r['id']} {r['name']}: {r['reason']}" for r in results
              if r["status"] != "ok"]  # fmt: skip
    assert failed == []
