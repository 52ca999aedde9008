"""Persisted queries: APQ (raw HTTP for every branch, and Apollo Client's link in node) and
trusted documents."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from runtime.settings import SettingsError, load_settings
from schema.persisted import DocumentLRU, ManifestError, load_manifest, sha256_hex
from tests.frontend.node_support import HERE, node, node_modules
from tests.frontend.serving import served
from tests.ops.browser_support import Unavailable

QUERY = "query Typename { __typename }"
OTHER = "query Other { __typename }"
NODE_TIMEOUT_SECONDS = 120


def _persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def _codes(body: Any) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or ()]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        served(apq_max_entries=2, apq_max_document_bytes=200) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


async def test_apq_not_found_then_registered_then_by_hash(http: httpx.AsyncClient) -> None:
    digest = sha256_hex(QUERY)
    first = await http.post("/graphql", json={"extensions": _persisted(digest)})
    assert first.status_code == 200
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert _codes(first.json()) == ["PERSISTED_QUERY_NOT_FOUND"]

    register = await http.post("/graphql", json={"query": QUERY, "extensions": _persisted(digest)})
    assert register.json()["data"] == {"__typename": "Query"}

    by_hash = await http.post("/graphql", json={"extensions": _persisted(digest)})
    assert by_hash.json()["data"] == {"__typename": "Query"}
    # GET with the hash only, as Apollo's useGETForHashedQueries sends cacheable queries.
    params = {"extensions": json.dumps(_persisted(digest))}
    got = await http.get("/graphql", params=params)
    assert got.status_code == 200
    assert got.json()["data"] == {"__typename": "Query"}


async def test_apq_refuses_a_hash_that_is_not_the_documents(http: httpx.AsyncClient) -> None:
    wrong = await http.post("/graphql", json={"query": QUERY, "extensions": _persisted("0" * 64)})
    assert _codes(wrong.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert "data" not in wrong.json() or wrong.json()["data"] is None
    still = await http.post("/graphql", json={"extensions": _persisted("0" * 64)})
    assert _codes(still.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "persisted",
    [{"version": 2, "sha256Hash": "0" * 64}, {"version": 1, "sha256Hash": "xyz"}, "nonsense"],
)
async def test_malformed_persisted_query_extensions_are_refused(
    http: httpx.AsyncClient, persisted: object
) -> None:
    answer = await http.post("/graphql", json={"extensions": {"persistedQuery": persisted}})
    assert _codes(answer.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


async def test_invalid_or_oversized_documents_are_not_kept(http: httpx.AsyncClient) -> None:
    invalid = "query { noSuchField }"
    answer = await http.post(
        "/graphql", json={"query": invalid, "extensions": _persisted(sha256_hex(invalid))}
    )
    assert answer.json()["errors"]
    big = "query Big { " + " ".join(["__typename"] * 30) + " }"
    await http.post("/graphql", json={"query": big, "extensions": _persisted(sha256_hex(big))})
    for document in (invalid, big):
        again = await http.post("/graphql", json={"extensions": _persisted(sha256_hex(document))})
        assert _codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_persisted_documents_meet_the_same_limits(http: httpx.AsyncClient) -> None:
    deep = (
        "query Deep { " + "__schema { types { fields { type { " * 5 + "name" + " } } } }" * 5 + " }"
    )
    sent = await http.post("/graphql", json={"query": deep})
    by_hash = await http.post(
        "/graphql", json={"query": deep, "extensions": _persisted(sha256_hex(deep))}
    )
    assert sent.json()["errors"]
    assert by_hash.json()["errors"][0]["message"] == sent.json()["errors"][0]["message"]


def test_the_store_is_bounded() -> None:
    store = DocumentLRU(max_entries=2, max_document_bytes=10)
    assert store.put("a", "1")
    assert store.put("b", "2")
    assert store.get("a") == "1"  # a is now the most recent
    assert store.put("c", "3")
    assert store.get("b") is None
    assert len(store) == 2
    assert not store.put("d", "x" * 11)
    assert len(store) == 2


def _manifest(tmp_path: Path, documents: list[str], apollo: bool = True) -> Path:
    path = tmp_path / "manifest.json"
    if apollo:
        operations = [
            {"id": sha256_hex(d), "name": "Op", "type": "query", "body": d} for d in documents
        ]
        data: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": operations,
        }
    else:
        data = {sha256_hex(d): d for d in documents}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("apollo", [True, False])
async def test_trusted_documents_only(tmp_path: Path, apollo: bool) -> None:
    manifest = _manifest(tmp_path, [QUERY], apollo)
    settings = {"persisted_queries": "trusted", "trusted_documents_file": manifest}
    async with served(**settings) as url, httpx.AsyncClient(base_url=url) as http:
        by_hash = await http.post("/graphql", json={"extensions": _persisted(sha256_hex(QUERY))})
        assert by_hash.json()["data"] == {"__typename": "Query"}
        as_text = await http.post("/graphql", json={"query": QUERY})
        assert as_text.json()["data"] == {"__typename": "Query"}
        for body in (
            {"query": OTHER},
            {"query": OTHER, "extensions": _persisted(sha256_hex(OTHER))},
            {"extensions": _persisted(sha256_hex(OTHER))},
            {"query": OTHER, "extensions": _persisted(sha256_hex(QUERY))},
        ):
            refused = await http.post("/graphql", json=body)
            assert _codes(refused.json()) == ["PERSISTED_QUERY_NOT_TRUSTED"], body
            assert refused.json().get("data") is None
            assert "only trusted documents" in refused.json()["errors"][0]["message"]


def test_a_manifest_with_a_wrong_hash_or_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0" * 64: QUERY}))
    with pytest.raises(ManifestError, match="not the SHA-256"):
        load_manifest(path)
    path.write_text("[1, 2]")
    with pytest.raises(ManifestError):
        load_manifest(path)
    with pytest.raises(SettingsError, match="TRUSTED_DOCUMENTS_FILE"):
        load_settings(None, persisted_queries="trusted")


async def test_persisted_queries_off(tmp_path: Path) -> None:
    async with served(persisted_queries="off") as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/graphql", json={"extensions": _persisted(sha256_hex(QUERY))})
        assert _codes(answer.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        assert (await http.post("/graphql", json={"query": QUERY})).json()["data"]


async def test_apollo_client_persisted_queries_link() -> None:
    """Apollo Client's own link: hash first, the document on PersistedQueryNotFound, then
    the hash alone (over GET) for the next client."""
    try:
        modules = node_modules() / "node_modules"
    except Unavailable as reason:
        pytest.skip(str(reason))
    async with served() as url:
        process = await asyncio.create_subprocess_exec(
            node(), str(HERE / "apollo_apq.cjs"), url + "/graphql",
            env={**os.environ, "NODE_PATH": str(modules)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_SECONDS)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["first"] == {"__typename": "Query"}
    assert report["second"] == {"__typename": "Query"}
    # First client: the hash alone by GET (not found), then the document and hash by POST;
    # second client: the hash alone by GET, answered.
    assert report["requests"] == [["GET", False], ["POST", True], ["GET", False]]


async def _over_websocket(url: str, document: str) -> dict[str, Any]:
    """The first reply (``next`` or ``error``) to ``document`` over graphql-transport-ws."""
    ws_url = url.replace("http", "ws") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": document}}))
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return reply


async def test_trusted_documents_over_websocket_too(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [QUERY])
    settings = {"persisted_queries": "trusted", "trusted_documents_file": manifest}
    async with served(**settings) as url:
        trusted = await _over_websocket(url, QUERY)
        assert trusted["type"] == "next"
        assert trusted["payload"]["data"] == {"__typename": "Query"}
        refused = await _over_websocket(url, OTHER)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
