"""Subscriptions over real WebSockets (gql clients, both protocols) against an in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from application.ids import new_account_id
from domain.accounts import Deposit, OpenAccount
from schema.limits import Limits
from tests.live.helpers import append, append_commit, take
from tests.wiring import Served, serve

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

ACCOUNT_CHANGED = """
subscription ($id: ID!) { accountChanged(id: $id) { id owner balance status version position } }
"""
EVENTS = """
subscription ($after: Int) { events(after: $after) { position streamId version type data } }
"""
LEDGER_CHANGED = "subscription { ledgerChanged { currency totalBalance position } }"


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve() as running:
        yield running


def client(url: str, protocol: str, payload: dict[str, Any] | None = None) -> Client:
    transport = WebsocketsTransport(url=url, subprotocols=[protocol], init_payload=payload or {})
    return Client(transport=transport, fetch_schema_from_transport=False)


def request(text: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(text, variable_values=variables)


async def _drain_into(received: list[Any], stream: AsyncIterator[Any]) -> None:
    """Append everything ``stream`` yields (bounded in time) until it ends or fails."""
    async with asyncio.timeout(10):
        async for message in stream:
            received.append(message)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_account_changed_sends_the_account_then_each_change(
    served: Served, protocol: str
) -> None:
    account_id = new_account_id()
    await served.service.handle(OpenAccount(account_id, "alice", "EUR"))
    async with client(served.url, protocol) as session:
        updates = session.subscribe(request(ACCOUNT_CHANGED, id=account_id))
        first = (await take(updates, 1))[0]["accountChanged"]
        assert (first["owner"], first["balance"], first["version"]) == ("alice", "0.00", 1)
        await served.service.handle(Deposit(account_id, 1250))
        second = (await take(updates, 1))[0]["accountChanged"]
        assert (second["balance"], second["version"], second["position"]) == ("12.50", 2, 2)
        await updates.aclose()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_events_catch_up_then_go_live_in_order(served: Served, protocol: str) -> None:
    await append(served.store, "account-a", 5)
    async with client(served.url, protocol) as session:
        events = session.subscribe(request(EVENTS, after=2))
        caught_up = await take(events, 3)
        await append(served.store, "account-a", 4)
        live = await take(events, 4)
        await events.aclose()
    got = [e["events"]["position"] for e in caught_up + live]
    assert got == [3, 4, 5, 6, 7, 8, 9]
    assert caught_up[0]["events"]["data"] == {"n": 3}


async def test_a_slow_events_subscriber_is_told_where_to_resume() -> None:
    async with serve(queue_size=5) as served:
        protocol = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
        async with client(served.url, protocol) as session:
            events = session.subscribe(request(EVENTS, after=0))
            await append(served.store, "account-a", 1)
            received = await take(events, 1)
            # 200 events land in one feed batch: far more than the queue holds.
            await append_commit(served.store, "account-b", 200)
            with pytest.raises(TransportQueryError) as failure:
                await _drain_into(received, events)
            errors = failure.value.errors or []
            extensions = errors[0]["extensions"]
            assert extensions["code"] == "SUBSCRIBER_TOO_SLOW"
            resume_after = extensions["resumeAfter"]
            assert resume_after == received[-1]["events"]["position"]
            resumed = session.subscribe(request(EVENTS, after=resume_after))
            rest = await take(resumed, 201 - resume_after)
            await resumed.aclose()
        positions = [e["events"]["position"] for e in received + rest]
        assert positions == list(range(1, 202))


async def test_ledger_changed(served: Served) -> None:
    async with client(served.url, PROTOCOLS[0]) as session:
        ledger = session.subscribe(request(LEDGER_CHANGED))
        assert (await take(ledger, 1))[0]["ledgerChanged"] == []
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "carol", "USD"))
        await served.service.handle(Deposit(account_id, 500))
        totals: list[dict[str, Any]] = []
        while not totals or totals[0]["totalBalance"] != "5.00":
            totals = (await take(ledger, 1))[0]["ledgerChanged"]
        assert totals == [{"currency": "USD", "totalBalance": "5.00", "position": 2}]
        await ledger.aclose()


async def test_closing_subscriptions_leaves_no_hub_subscriber(served: Served) -> None:
    account_id = new_account_id()
    await served.service.handle(OpenAccount(account_id, "dave", "EUR"))
    async with client(served.url, PROTOCOLS[0]) as session:
        streams = [session.subscribe(request(ACCOUNT_CHANGED, id=account_id)) for _ in range(5)]
        for stream in streams:
            await take(stream, 1)
        assert served.hub.subscriber_count() == 5
        for stream in streams:
            await stream.aclose()
    async with asyncio.timeout(5):
        while served.hub.subscriber_count():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_subscriptions_per_connection_are_limited() -> None:
    async with serve(limits=Limits(max_subscriptions_per_connection=2)) as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "gina", "EUR"))
        async with client(served.url, PROTOCOLS[0]) as session:
            watch = request(ACCOUNT_CHANGED, id=account_id)
            open_ones = [session.subscribe(watch) for _ in range(2)]
            for stream in open_ones:
                await take(stream, 1)
            third = session.subscribe(watch)
            with pytest.raises(TransportQueryError, match="limit"):
                await take(third, 1)
            for stream in open_ones:
                await stream.aclose()
            # Closed ones free their slots.
            again = session.subscribe(watch)
            assert (await take(again, 1))[0]["accountChanged"]["id"] == account_id
            await again.aclose()
