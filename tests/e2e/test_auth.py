"""AUTH_MODE=jwt on the real server: tokens over HTTP and over both WebSocket protocols."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.conftest import JWT_SECRET
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
OPEN = """mutation($owner: String!) { openAccount(input: {owner: $owner, currency: "EUR"}) {
  __typename ... on AccountPayload { accountId } } }"""
VISIBLE = "query($id: ID!) { account(id: $id, consistency: {streamId: $id, version: 1}) { id } }"
CHANGED = "subscription($id: ID!) { accountChanged(id: $id) { balance version } }"


def token(sub: str, *, ttl: float = 300, secret: str = JWT_SECRET) -> str:
    claims = {"sub": sub, "roles": [], "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


FORGED = {
    "expired": token("alice", ttl=-30),
    "wrong key": token("alice", secret="s" * 48),
    "garbage": "not-a-token",
}


async def open_as(server: Server, user: str) -> str:
    headers = {"Authorization": f"Bearer {token(user)}"}
    transport = HTTPXAsyncTransport(url=server.http, headers=headers, timeout=30)
    async with Client(transport=transport) as session:
        result = await session.execute(GraphQLRequest(OPEN, variable_values={"owner": user}))
        assert result["openAccount"]["__typename"] == "AccountPayload", result
        account_id = str(result["openAccount"]["accountId"])
        # Subscriptions check ownership on the read model: wait until it has the account.
        seen = await session.execute(GraphQLRequest(VISIBLE, variable_values={"id": account_id}))
        assert seen["account"]["id"] == account_id
    return account_id


@pytest.mark.parametrize("name", list(FORGED))
async def test_http_refuses_expired_and_forged_tokens(jwt_server: Server, name: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            jwt_server.http,
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {FORGED[name]}"},
        )
    assert response.status_code == 401


async def first_change(
    server: Server,
    protocol: str,
    init: dict[str, Any],
    account: str,
    headers: dict[str, str] | None = None,
) -> Any:
    transport = WebsocketsTransport(
        url=server.ws, subprotocols=[protocol], init_payload=init, headers=headers
    )
    async with Client(transport=transport) as session:
        stream = session.subscribe(GraphQLRequest(CHANGED, variable_values={"id": account}))
        try:
            return await asyncio.wait_for(anext(stream), 20)
        finally:
            await stream.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_websocket_token_in_connection_params(jwt_server: Server, protocol: str) -> None:
    account = await open_as(jwt_server, "alice")
    for init in ({"Authorization": f"Bearer {token('alice')}"}, {"token": token("alice")}):
        change = await first_change(jwt_server, protocol, init, account)
        assert change["accountChanged"]["version"] == 1
    header = {"Authorization": f"Bearer {token('alice')}"}
    change = await first_change(jwt_server, protocol, {}, account, headers=header)
    assert change["accountChanged"]["balance"] == "0.00"
    with pytest.raises(TransportQueryError):
        await first_change(jwt_server, protocol, {"token": token("bob")}, account)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", [*FORGED, "missing"])
async def test_websocket_refuses_bad_tokens(jwt_server: Server, protocol: str, name: str) -> None:
    init = {} if name == "missing" else {"Authorization": f"Bearer {FORGED[name]}"}
    transport = WebsocketsTransport(url=jwt_server.ws, subprotocols=[protocol], init_payload=init)
    with pytest.raises(Exception) as refused:  # noqa: PT011 - gql raises per protocol
        async with Client(transport=transport):
            pass
    assert refused.value is not None
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(jwt_server.http, json={"query": "{ __typename }"})
    assert response.status_code == 200
