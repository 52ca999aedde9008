"""OIDC sign-in on the real server (``python server.py``) against the loopback provider stand-in.

HTTP and both WebSocket subprotocols, the ``jwks`` readiness check and metrics,
the provider going away while cached keys keep serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import connect

from runtime.embedded import EmbeddedMongo
from tests.auth.idp import AUDIENCE, IdP
from tests.auth.test_sessions import ACCOUNT, messages_until_closed
from tests.e2e.conftest import FAST
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
METRICS_TOKEN = "operator-token-for-readyz-details-0123456789"
OPEN = """mutation($owner: String!) { openAccount(input: {owner: $owner, currency: "EUR"}) {
  __typename ... on AccountPayload { accountId } } }"""
VISIBLE = "query($id: ID!) { account(id: $id, consistency: {streamId: $id, version: 1}) { id } }"


@pytest.fixture(scope="module")
def provider() -> Iterator[IdP]:
    idp = IdP()
    idp.add_key("ES256")
    with idp.running() as running:
        yield running


@pytest.fixture(scope="module")
def oidc_server(
    provider: IdP, embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {
        **FAST,
        "AUTH_MODE": "jwt",
        "OIDC_ISSUER": provider.issuer,
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_ROLES_CLAIM": "realm_access.roles",
        "OIDC_ADMIN_ROLE": "ledger-admin",
        "JWT_LEEWAY_SECONDS": "0",
        "JWKS_CACHE_SECONDS": "1",
        "JWKS_REFETCH_INTERVAL_SECONDS": "1",
        "JWKS_FETCH_TIMEOUT_SECONDS": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    with running_server(tmp_path_factory.mktemp("oidc"), embedded_mongo.url, env) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(server: Server, query: str, token: str | None, **variables: Any) -> httpx.Response:
    headers = bearer(token) if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        body = {"query": query, "variables": variables}
        return await client.post(server.http, json=body, headers=headers)


async def open_as(server: Server, token: str, owner: str) -> str:
    response = await post(server, OPEN, token, owner=owner)
    result = response.json()["data"]["openAccount"]
    assert result["__typename"] == "AccountPayload", result
    account_id = str(result["accountId"])
    seen = await post(server, VISIBLE, token, id=account_id)
    assert seen.json()["data"]["account"]["id"] == account_id
    return account_id


async def test_http_with_oidc_tokens(oidc_server: Server, provider: IdP) -> None:
    alice = provider.token("alice")
    await open_as(oidc_server, alice, "alice")
    refused = (await post(oidc_server, OPEN, alice, owner="bob")).json()
    assert refused["data"]["openAccount"]["__typename"] == "Forbidden"
    for bad in (provider.token("alice", ttl=-5), provider.token(aud="other"), "x.y.z"):
        assert (await post(oidc_server, "{ __typename }", bad)).status_code == 401
    events = "{ events(first: 1) { edges { cursor } } }"
    as_alice = (await post(oidc_server, events, alice)).json()
    assert as_alice["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    root = provider.token("root", realm_access={"roles": ["ledger-admin"]})
    assert "errors" not in (await post(oidc_server, events, root)).json()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscriptions_with_oidc_tokens(
    oidc_server: Server, provider: IdP, protocol: str
) -> None:
    account = await open_as(oidc_server, provider.token("carol"), "carol")
    for init, headers in (
        ({"Authorization": f"Bearer {provider.token('carol')}"}, None),
        ({}, bearer(provider.token("carol"))),
    ):
        transport = WebsocketsTransport(
            url=oidc_server.ws, subprotocols=[protocol], init_payload=init, headers=headers
        )
        async with Client(transport=transport) as session:
            stream = session.subscribe(GraphQLRequest(ACCOUNT, variable_values={"id": account}))
            try:
                first = await asyncio.wait_for(anext(stream), 20)
            finally:
                await stream.aclose()
        assert first["accountChanged"] == {"owner": "carol", "version": 1}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_expiry_closes_the_socket(oidc_server: Server, provider: IdP, protocol: str) -> None:
    async with connect(oidc_server.ws, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        payload = bearer(provider.token("dave", ttl=2))
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        received, code = await messages_until_closed(ws, within=15)
    assert code == 4401
    if protocol == "graphql-ws":
        assert received[-1]["type"] == "connection_error"


async def test_readiness_metrics_and_a_provider_that_goes_away(
    oidc_server: Server, provider: IdP
) -> None:
    # /readyz details and /metrics are for the operator's token.
    async with httpx.AsyncClient(timeout=10, headers=bearer(METRICS_TOKEN)) as client:
        ready = (await client.get(oidc_server.url + "/readyz")).json()
        assert ready["checks"]["jwks"]["ok"] is True
        provider.down = True
        try:
            await asyncio.sleep(1.5)  # past the cache lifetime and the refetch interval
            for _ in range(20):  # cached keys keep verifying
                response = await post(oidc_server, "{ __typename }", provider.token("erin"))
                assert response.status_code == 200
            await asyncio.sleep(0.5)
            response = await client.get(oidc_server.url + "/readyz")
            assert response.status_code == 200
            jwks = response.json()["checks"]["jwks"]
            assert jwks["ok"] is True
            assert "unreachable" in jwks["detail"]
            metrics = (await client.get(oidc_server.url + "/metrics")).text
            assert "ledger_jwks_provider_up 0.0" in metrics
            assert 'ledger_jwks_fetches_total{outcome="error"}' in metrics
        finally:
            provider.down = False
