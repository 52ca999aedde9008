"""WebSocket sessions authenticated with OIDC (and HS256) tokens end when the token does.

The real app on uvicorn in-process (``tests.wiring``), real clients over
loopback, the identity-provider stand-in for the keys.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from application.ids import new_account_id
from domain.accounts import OpenAccount
from schema.auth import AuthSettings, User, session_expired
from schema.oidc import JwksKeys, OidcSettings, OidcVerifier
from tests.auth.idp import AUDIENCE, IdP
from tests.live.helpers import eventually
from tests.wiring import Served, serve, settle

TRANSPORT, LEGACY = "graphql-transport-ws", "graphql-ws"
ACCOUNT = "subscription ($id: ID!) { accountChanged(id: $id) { owner version } }"
SECRET = "session-expiry-secret-long-enough-0123456789"


def oidc(idp: IdP) -> AuthSettings:
    settings = OidcSettings(
        issuer=idp.issuer,
        audience=AUDIENCE,
        roles_claim="realm_access.roles",
        admin_role="ledger-admin",
    )
    return AuthSettings(mode="jwt", oidc=OidcVerifier(settings, JwksKeys(settings)))


async def opened(served: Served, owner: str) -> str:
    account_id = new_account_id()
    await served.service.handle(OpenAccount(account_id, owner, "EUR"))
    await settle(served.consumers, served.store)
    await served.live.feed.wait_for(await served.store.head_position(), within=10)
    return account_id


async def init(
    url: str, protocol: str, token: str, *, in_header: bool = False
) -> tuple[ClientConnection, dict[str, Any]]:
    """Open a socket and authenticate (connection params, or the upgrade header)."""
    headers = {"Authorization": f"Bearer {token}"} if in_header else None
    ws = await connect(url, subprotocols=[protocol], additional_headers=headers)  # type: ignore[list-item]
    payload = {} if in_header else {"Authorization": f"Bearer {token}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws, json.loads(await ws.recv())


async def subscribe(ws: ClientConnection, protocol: str, account_id: str) -> None:
    kind = "subscribe" if protocol == TRANSPORT else "start"
    payload = {"query": ACCOUNT, "variables": {"id": account_id}}
    await ws.send(json.dumps({"type": kind, "id": "1", "payload": payload}))


async def messages_until_closed(ws: ClientConnection, within: float) -> tuple[list[Any], int]:
    """Every message up to the server's close, and the close code."""
    received: list[Any] = []
    try:
        async with asyncio.timeout(within):
            while True:
                parsed = json.loads(await ws.recv())
                if parsed.get("type") != "ka":
                    received.append(parsed)
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd is not None else -1
    except TimeoutError:
        pytest.fail(f"still open after {within}s: {received}")


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
@pytest.mark.parametrize("in_header", [False, True], ids=["params", "header"])
async def test_a_subscription_authenticated_with_an_oidc_token(
    idp: IdP, protocol: str, in_header: bool
) -> None:
    async with serve(auth=oidc(idp)) as served:
        alices = await opened(served, "alice")
        ws, ack = await init(served.url, protocol, idp.token("alice"), in_header=in_header)
        async with ws:
            assert ack["type"] == "connection_ack"
            await subscribe(ws, protocol, alices)
            first = json.loads(await ws.recv())
            assert first["payload"]["data"]["accountChanged"] == {"owner": "alice", "version": 1}


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_oidc_owner_scoping_and_admin_role_on_subscriptions(idp: IdP, protocol: str) -> None:
    async with serve(auth=oidc(idp)) as served:
        bobs = await opened(served, "bob")
        ws, _ = await init(served.url, protocol, idp.token("alice"))
        async with ws:
            await subscribe(ws, protocol, bobs)
            refused = json.loads(await ws.recv())
            assert "FORBIDDEN" in json.dumps(refused)
            assert not (refused.get("payload") or {}).get("data")
        root = idp.token("root", realm_access={"roles": ["ledger-admin"]})
        ws, _ = await init(served.url, protocol, root)
        async with ws:
            await subscribe(ws, protocol, bobs)
            seen = json.loads(await ws.recv())
            assert seen["payload"]["data"]["accountChanged"]["owner"] == "bob"


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_the_socket_closes_when_the_oidc_token_expires(idp: IdP, protocol: str) -> None:
    async with serve(auth=oidc(idp)) as served:
        alices = await opened(served, "alice")
        ws, ack = await init(served.url, protocol, idp.token("alice", ttl=2))
        async with ws:
            assert ack["type"] == "connection_ack"
            await subscribe(ws, protocol, alices)
            received, code = await messages_until_closed(ws, within=10)
        assert code == 4401
        assert received[0]["payload"]["data"]["accountChanged"]["owner"] == "alice"
        if protocol == LEGACY:
            assert received[-1]["type"] == "connection_error"
            assert "expired" in received[-1]["payload"]["message"]
        await eventually(lambda: served.hub.subscriber_count() == 0)
        # Reconnecting with a fresh token is how a client carries on.
        ws, ack = await init(served.url, protocol, idp.token("alice"))
        async with ws:
            assert ack["type"] == "connection_ack"


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_hs256_sessions_expire_too(protocol: str) -> None:
    auth = AuthSettings(mode="jwt", jwt_secret=SECRET)
    async with serve(auth=auth) as served:
        claims = {"sub": "alice", "roles": [], "exp": int(time.time()) + 2}
        ws, ack = await init(served.url, protocol, jwt.encode(claims, SECRET, algorithm="HS256"))
        async with ws:
            assert ack["type"] == "connection_ack"
            _, code = await messages_until_closed(ws, within=10)
        assert code == 4401


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_a_subscribe_after_expiry_is_refused(idp: IdP, protocol: str) -> None:
    """The loop is held past expiry, then a subscribe arrives with the timer due too.

    Whichever runs first (the timer, or the check at subscribe), the answer is
    the close, never a subscription.
    """
    async with serve(auth=oidc(idp)) as served:
        alices = await opened(served, "alice")
        ws, _ = await init(served.url, protocol, idp.token("alice", ttl=2))
        async with ws:
            time.sleep(2.2)  # noqa: ASYNC251 - holds the server's loop too: it is this one
            await subscribe(ws, protocol, alices)
            received, code = await messages_until_closed(ws, within=10)
        assert code == 4401
        assert not [m for m in received if m.get("type") in ("next", "data")]
        assert served.hub.subscriber_count() == 0


def test_expiry_is_exp_plus_the_leeway() -> None:
    user = User("alice", expires_at=1_000.0)
    assert not session_expired(AuthSettings(leeway_seconds=10), user, now=1_009.9)
    assert session_expired(AuthSettings(leeway_seconds=10), user, now=1_010.0)
    assert not session_expired(AuthSettings(), User("dev"), now=1e12)
