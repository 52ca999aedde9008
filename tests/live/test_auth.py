"""Subscriptions in jwt mode: own accounts and transfers, events for admins, bad tokens refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from application.ids import new_account_id, new_transfer_id
from domain.accounts import Deposit, OpenAccount
from domain.transfers import RequestTransfer
from schema.auth import AuthSettings
from schema.context import Context
from schema.errors import ClientError, forbidden_query
from schema.subscriptions import documents
from tests.live.helpers import eventually, take
from tests.wiring import Served, serve, settle

SECRET = "test-secret-for-live-subscriptions-0123456789"
FORGED = "not-the-secret-but-just-as-long-0123456789"
PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
ACCOUNT = "subscription ($id: ID!) { accountChanged(id: $id) { id owner version } }"
TRANSFER = "subscription ($id: ID!) { transferChanged(id: $id) { id status } }"
EVENTS = "subscription { events(after: 0) { position } }"
LEDGER = "subscription { ledgerChanged { currency } }"


def token(sub: str, *roles: str, ttl: float = 600, secret: str = SECRET) -> str:
    claims = {"sub": sub, "roles": list(roles), "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve(auth=AuthSettings(mode="jwt", jwt_secret=SECRET)) as running:
        yield running


@pytest.fixture
async def accounts(served: Served) -> dict[str, str]:
    """alice's and bob's accounts and a transfer from alice to bob, all projected."""
    ids = {"alice": new_account_id(), "bob": new_account_id(), "transfer": new_transfer_id()}
    for owner in ("alice", "bob"):
        await served.service.handle(OpenAccount(ids[owner], owner, "EUR"))
    await served.service.handle(Deposit(ids["alice"], 1000))
    await served.service.handle(RequestTransfer(ids["transfer"], ids["alice"], ids["bob"], 100))
    await settle(served.consumers, served.store)
    await served.live.feed.wait_for(await served.store.head_position(), within=10)
    return ids


async def first(url: str, protocol: str, jwt_token: str, text: str, **variables: Any) -> Any:
    """The first message of a subscription made with ``jwt_token`` (or its error)."""
    transport = WebsocketsTransport(
        url=url, subprotocols=[protocol], init_payload={"Authorization": f"Bearer {jwt_token}"}
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        stream = session.subscribe(GraphQLRequest(text, variable_values=variables))
        try:
            return (await take(stream, 1, within=10))[0]
        finally:
            await stream.aclose()


async def refused(url: str, protocol: str, jwt_token: str, text: str, **variables: Any) -> str:
    with pytest.raises(TransportQueryError) as failure:
        await first(url, protocol, jwt_token, text, **variables)
    errors = failure.value.errors or [{}]
    return str(errors[0].get("extensions", {}).get("code"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_users_subscribe_only_to_their_own_accounts(
    served: Served, accounts: dict[str, str], protocol: str
) -> None:
    alice = token("alice")
    got = await first(served.url, protocol, alice, ACCOUNT, id=accounts["alice"])
    assert got["accountChanged"]["owner"] == "alice"
    assert await refused(served.url, protocol, alice, ACCOUNT, id=accounts["bob"]) == "FORBIDDEN"
    missing = new_account_id()
    assert await refused(served.url, protocol, alice, ACCOUNT, id=missing) == "FORBIDDEN"
    admin = token("root", "admin")
    got = await first(served.url, protocol, admin, ACCOUNT, id=accounts["bob"])
    assert got["accountChanged"]["owner"] == "bob"


async def test_transfers_are_visible_to_both_sides_only(
    served: Served, accounts: dict[str, str]
) -> None:
    protocol, transfer_id = PROTOCOLS[0], accounts["transfer"]
    for user in ("alice", "bob"):
        got = await first(served.url, protocol, token(user), TRANSFER, id=transfer_id)
        assert got["transferChanged"]["id"] == transfer_id
    carol = token("carol")
    assert await refused(served.url, protocol, carol, TRANSFER, id=transfer_id) == "FORBIDDEN"


async def test_the_event_stream_is_for_admins(served: Served, accounts: dict[str, str]) -> None:
    protocol = PROTOCOLS[1]
    assert await refused(served.url, protocol, token("alice"), EVENTS) == "FORBIDDEN"
    got = await first(served.url, protocol, token("root", "admin"), EVENTS)
    assert got["events"]["position"] == 1
    ledger = await first(served.url, protocol, token("alice"), LEDGER)
    assert ledger["ledgerChanged"] == [{"currency": "EUR"}]


@pytest.mark.parametrize(
    ("protocol", "kinds"),
    [("graphql-transport-ws", ("next", "complete")), ("graphql-ws", ("data", "complete"))],
)
async def test_a_refused_subscription_is_an_error_result_then_complete(
    served: Served, accounts: dict[str, str], protocol: str, kinds: tuple[str, str]
) -> None:
    """The access check runs when the stream starts (``documents(admit=...)``): the
    refusal is the operation's result with the error, not a protocol ``error``."""
    async with connect(served.url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        init = {"Authorization": f"Bearer {token('alice')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        for query, variables in ((ACCOUNT, {"id": accounts["bob"]}), (TRANSFER, {"id": "t-1"})):
            payload = {"query": query, "variables": variables}
            await ws.send(json.dumps({"id": "1", "type": start, "payload": payload}))
            result, end = json.loads(await ws.recv()), json.loads(await ws.recv())
            assert (result["type"], end["type"]) == kinds
            [error] = result["payload"]["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert result["payload"]["data"] is None
    assert served.hub.subscriber_count() == 0


async def test_where_no_subscriptions_are_served_the_access_check_still_comes_first(
    served: Served,
) -> None:
    """``documents(admit=...)`` in a process without a live feed: a refused subscriber
    hears FORBIDDEN, an admitted one UNAVAILABLE, as the stream itself would say."""
    ctx = Context(service=served.service, events=served.store)  # no live feed
    assert ctx.live is None

    async def refuse() -> None:
        raise forbidden_query("not yours")

    async def accept() -> None:
        pass

    for admit, expected in ((refuse, "FORBIDDEN"), (accept, "UNAVAILABLE"), (None, "UNAVAILABLE")):
        stream = documents(ctx, "account:a-1", str, admit=admit)
        with pytest.raises(ClientError) as ended:
            await anext(stream)
        assert ended.value.extensions["code"] == expected


async def _read_until_closed(ws: ClientConnection) -> None:
    for _ in range(3):  # graphql-ws sends connection_error before closing
        await ws.recv()


async def _closed_with(url: str, protocol: str, params: dict[str, Any]) -> int | None:
    """Send connection_init with ``params``; the close code the server answers with."""
    async with connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": params}))
        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(ws)
        return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.parametrize(
    ("protocol", "code"), [("graphql-transport-ws", 4403), ("graphql-ws", 1011)]
)
async def test_missing_expired_or_forged_tokens_are_refused(protocol: str, code: int) -> None:
    async with serve(auth=AuthSettings(mode="jwt", jwt_secret=SECRET)) as served:
        for params in (
            {},
            {"Authorization": f"Bearer {token('alice', ttl=-60)}"},
            {"token": token("alice", "admin", secret=FORGED)},
        ):
            assert await _closed_with(served.url, protocol, params) == code
        assert served.hub.subscriber_count() == 0


async def test_new_accounts_and_transfers_may_be_watched_before_they_are_projected() -> None:
    """Ownership falls back to the event store while the read model lags."""
    async with serve(auth=AuthSettings(mode="jwt", jwt_secret=SECRET), project=False) as served:
        alice_id, bob_id, transfer_id = new_account_id(), new_account_id(), new_transfer_id()
        await served.service.handle(OpenAccount(alice_id, "alice", "EUR"))
        await served.service.handle(OpenAccount(bob_id, "bob", "EUR"))
        await served.service.handle(RequestTransfer(transfer_id, alice_id, bob_id, 100))
        protocol, carol = PROTOCOLS[0], token("carol")
        # Nothing is projected, yet strangers are still refused ...
        assert await refused(served.url, protocol, carol, ACCOUNT, id=alice_id) == "FORBIDDEN"
        assert await refused(served.url, protocol, carol, TRANSFER, id=transfer_id) == "FORBIDDEN"
        assert await refused(served.url, protocol, carol, ACCOUNT, id=transfer_id) == "FORBIDDEN"
        # ... and owners are let in: they get the documents once projected.
        account = asyncio.create_task(
            first(served.url, protocol, token("alice"), ACCOUNT, id=alice_id)
        )
        transfer = asyncio.create_task(
            first(served.url, protocol, token("bob"), TRANSFER, id=transfer_id)
        )
        try:
            await eventually(lambda: served.hub.subscriber_count() == 2 or account.done())
            assert not account.done()  # subscribed, not refused
            served.consumers.start()
            got = await account
            assert got["accountChanged"]["owner"] == "alice"
            assert (await transfer)["transferChanged"]["id"] == transfer_id
        finally:
            for task in (account, transfer):
                task.cancel()
            await asyncio.gather(account, transfer, return_exceptions=True)
