"""The ASGI app over HTTP, in-process (httpx's ASGI transport; no sockets).

Tokens on HTTP (missing, valid, expired, forged), GraphiQL switch, and HTTP
level bad input (invalid JSON, wrong content types, missing query).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from schema.app import make_graphql_app
from schema.auth import AuthSettings
from schema.limits import Limits
from tests.wiring import SECRET, Wiring, make_wiring, token

URL = "http://test/graphql"
OPEN = 'mutation { openAccount(input: {owner: "alice", currency: "EUR"}) { __typename } }'


async def client_for(wiring: Wiring) -> httpx.AsyncClient:
    app = make_graphql_app(wiring.context, wiring.schema)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))


@pytest.fixture
async def dev(wiring: Wiring) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(wiring) as client:
        yield client


@pytest.fixture
async def jwt_client() -> AsyncIterator[tuple[Wiring, httpx.AsyncClient]]:
    wiring = await make_wiring(auth=AuthSettings(mode="jwt", jwt_secret=SECRET))
    async with await client_for(wiring) as client:
        yield wiring, client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def post(client: httpx.AsyncClient, query: str, **kwargs: Any) -> httpx.Response:
    return await client.post(URL, json={"query": query}, **kwargs)


async def test_dev_mode_everyone_is_admin_dev(dev: httpx.AsyncClient, wiring: Wiring) -> None:
    response = await post(dev, OPEN)
    assert response.status_code == 200
    assert response.json()["data"]["openAccount"]["__typename"] == "AccountPayload"
    events = (await wiring.store.read_all(0, 10))[0]
    assert events.metadata.actor == "dev"


async def test_jwt_valid_token_acts_as_its_subject(
    jwt_client: tuple[Wiring, httpx.AsyncClient],
) -> None:
    wiring, client = jwt_client
    response = await post(client, OPEN, headers=bearer(token("alice")))
    assert response.json()["data"]["openAccount"]["__typename"] == "AccountPayload"
    as_bob = await post(client, OPEN, headers=bearer(token("bob")))
    assert as_bob.json()["data"]["openAccount"]["__typename"] == "Forbidden"
    bare = await post(client, OPEN, headers={"Authorization": token("alice")})
    assert bare.json()["data"]["openAccount"]["__typename"] == "AccountPayload"
    assert await wiring.event_count() == 2


async def test_jwt_without_token_is_anonymous(
    jwt_client: tuple[Wiring, httpx.AsyncClient],
) -> None:
    wiring, client = jwt_client
    response = await post(client, OPEN)
    assert response.json()["data"]["openAccount"]["__typename"] == "Forbidden"
    assert await wiring.event_count() == 0


def forged_tokens() -> list[str]:
    expired = token("alice", ["admin"], ttl=-10)
    other_key = token("alice", ["admin"], secret="x" * 40)
    unsigned = jwt.encode({"sub": "alice", "roles": ["admin"], "exp": 2**40}, "", "none")
    good = token("alice")
    head, payload, signature = good.split(".")
    tampered = ".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    no_exp = jwt.encode({"sub": "alice"}, SECRET, "HS256")
    return [expired, other_key, unsigned, tampered, no_exp, "garbage", "a.b.c"]


@pytest.mark.parametrize("value", forged_tokens())
async def test_expired_or_forged_tokens_get_401(
    jwt_client: tuple[Wiring, httpx.AsyncClient], value: str
) -> None:
    wiring, client = jwt_client
    response = await post(client, OPEN, headers=bearer(value))
    assert response.status_code == 401
    assert "Unauthorized" in response.text
    assert await wiring.event_count() == 0
    basic = await post(client, OPEN, headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"query": 1}', "application/json"),
        (b'{"query": "{ __typename }", "variables": []}', "application/json"),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded"),
        (b"{ __typename }", "text/plain"),
        (b"\xff\xfe", "application/json"),
        (b"", "application/json"),
    ],
)
async def test_http_bad_bodies_are_400(
    dev: httpx.AsyncClient, wiring: Wiring, content: bytes, content_type: str
) -> None:
    response = await dev.post(URL, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.text
    assert (await post(dev, "{ __typename }")).status_code == 200


async def test_missing_query_and_mutation_over_get(dev: httpx.AsyncClient) -> None:
    assert (await dev.post(URL, json={})).status_code == 400
    response = await dev.get(URL, params={"query": OPEN})
    assert response.status_code in (400, 405)


async def test_graphiql_switch(wiring: Wiring) -> None:
    html = {"Accept": "text/html"}
    async with await client_for(wiring) as client:
        assert (await client.get(URL, headers=html)).status_code == 200
    wiring.context = replace(wiring.context, limits=Limits(graphiql=False))
    async with await client_for(wiring) as client:
        assert (await client.get(URL, headers=html)).status_code == 404
