"""End to end: the real server process, driven by the `gql` client over HTTP and WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
OPEN = """mutation($owner: String!) {
  openAccount(input: {owner: $owner, currency: "EUR"}) {
    __typename ... on AccountPayload { accountId version position } } }"""
DEPOSIT = """mutation($id: ID!, $amount: Decimal!) {
  deposit(input: {accountId: $id, amount: $amount}) {
    __typename ... on AccountPayload { version position account { balance } }
    ... on Error { message } } }"""
WITHDRAW = """mutation($id: ID!, $amount: Decimal!) {
  withdraw(input: {accountId: $id, amount: $amount}) {
    __typename ... on AccountPayload { version account { balance } }
    ... on InsufficientFunds { balance requested } } }"""
ACCOUNT = """query($id: ID!, $v: Int!) {
  account(id: $id, consistency: {streamId: $id, version: $v}) { balance version status } }"""
ACCOUNT_CHANGED = "subscription($id: ID!) { accountChanged(id: $id) { balance version position } }"
EVENTS = """subscription($after: Int) {
  events(after: $after) { position streamId version type data } }"""


@asynccontextmanager
async def http_session(server: Server) -> AsyncIterator[Any]:
    client = Client(transport=HTTPXAsyncTransport(url=server.http, timeout=30))
    async with client as session:
        yield session


@asynccontextmanager
async def ws_session(
    server: Server, protocol: str, init: dict[str, Any] | None = None
) -> AsyncIterator[Any]:
    transport = WebsocketsTransport(url=server.ws, subprotocols=[protocol], init_payload=init)
    async with Client(transport=transport) as session:
        yield session


async def run(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = await session.execute(GraphQLRequest(query, variable_values=variables))
    return result


async def open_account(session: Any, owner: str = "e2e") -> str:
    result = (await run(session, OPEN, owner=owner))["openAccount"]
    assert result["__typename"] == "AccountPayload", result
    return str(result["accountId"])


async def test_mutations_and_queries_over_http(server: Server) -> None:
    async with http_session(server) as session:
        account_id = await open_account(session)
        deposited = (await run(session, DEPOSIT, id=account_id, amount="10.25"))["deposit"]
        assert deposited["account"]["balance"] == "10.25"
        refused = (await run(session, WITHDRAW, id=account_id, amount="11"))["withdraw"]
        assert refused == {
            "__typename": "InsufficientFunds",
            "balance": "10.25",
            "requested": "11.00",
        }
        withdrawn = (await run(session, WITHDRAW, id=account_id, amount="0.25"))["withdraw"]
        assert withdrawn["version"] == 3
        account = (await run(session, ACCOUNT, id=account_id, v=3))["account"]
        assert account == {"balance": "10.00", "version": 3, "status": "OPEN"}


async def test_a_command_payload_carries_its_global_position(server: Server) -> None:
    """On the embedded database positions are stamped after the commit: the payload waits
    for this server's sequencer rather than answering null."""
    async with http_session(server) as session:
        account_id = await open_account(session)
        positions = []
        for _ in range(5):
            deposited = (await run(session, DEPOSIT, id=account_id, amount="1"))["deposit"]
            positions.append(deposited["position"])
    assert all(isinstance(p, int) for p in positions), positions
    assert positions == sorted(set(positions))


async def take(stream: AsyncIterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    async for item in stream:
        items.append(item)
        if len(items) == count:
            break
    return items


async def _changes_after_two_deposits(ws: Any, http: Any, account_id: str) -> list[dict[str, Any]]:
    """``accountChanged`` from the opened state until both deposits show (version 3)."""
    changes = ws.subscribe(GraphQLRequest(ACCOUNT_CHANGED, variable_values={"id": account_id}))
    seen = [(await asyncio.wait_for(anext(changes), 20))["accountChanged"]]
    await run(http, DEPOSIT, id=account_id, amount="1")
    await run(http, DEPOSIT, id=account_id, amount="2")
    while seen[-1]["version"] < 3:
        seen.append((await asyncio.wait_for(anext(changes), 20))["accountChanged"])
    await changes.aclose()
    return seen


async def _events_until(ws: Any, stream_id: str, version: int) -> list[dict[str, Any]]:
    """``events(after: 0)`` until ``stream_id`` reaches ``version`` (bounded in count)."""
    events = ws.subscribe(GraphQLRequest(EVENTS, variable_values={"after": 0}))
    received: list[dict[str, Any]] = []
    while not any(e["streamId"] == stream_id and e["version"] == version for e in received):
        received.append((await asyncio.wait_for(anext(events), 20))["events"])
        assert len(received) < 10_000
    await events.aclose()
    return received


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_account_changed_and_events_subscriptions(server: Server, protocol: str) -> None:
    async with http_session(server) as http:
        account_id = await open_account(http, f"sub-{protocol}")
        opened_at = (await run(http, ACCOUNT, id=account_id, v=1))["account"]["version"]
        assert opened_at == 1
        async with ws_session(server, protocol) as ws:
            seen = await _changes_after_two_deposits(ws, http, account_id)
            assert (seen[0]["balance"], seen[0]["version"]) == ("0.00", 1)
            assert seen[-1]["balance"] == "3.00"
            assert seen[-1]["position"] is not None

            received = await _events_until(ws, account_id, version=3)
            positions = [e["position"] for e in received]
            assert positions == list(range(1, len(positions) + 1))
            mine = [e["type"] for e in received if e["streamId"] == account_id]
            assert mine == ["AccountOpened", "MoneyDeposited", "MoneyDeposited"]


TRANSFER = """mutation($from: ID!, $to: ID!, $amount: Decimal!) {
  requestTransfer(input: {fromAccountId: $from, toAccountId: $to, amount: $amount}) {
    __typename ... on TransferPayload { transfer { id status } } } }"""
TRANSFER_STATUS = "query($id: ID!) { transfer(id: $id) { status amount currency position } }"
BALANCE = """query($id: ID!, $p: Int!) {
  account(id: $id, consistency: {position: $p}) { balance } }"""


async def test_transfer_completes_through_the_process_manager(server: Server) -> None:
    async with http_session(server) as session:
        source, target = await open_account(session, "payer"), await open_account(session, "payee")
        await run(session, DEPOSIT, id=source, amount="5")
        requested = await run(session, TRANSFER, **{"from": source, "to": target, "amount": "2"})
        payload = requested["requestTransfer"]
        assert payload["transfer"]["status"] == "REQUESTED"
        transfer_id = payload["transfer"]["id"]
        status = None
        for _ in range(200):  # bounded: 20 s
            found = (await run(session, TRANSFER_STATUS, id=transfer_id))["transfer"]
            status = found["status"] if found else None
            if status in ("COMPLETED", "FAILED"):
                break
            await asyncio.sleep(0.1)
        assert status == "COMPLETED"
        position = found.pop("position")
        assert found == {"status": "COMPLETED", "amount": "2.00", "currency": "EUR"}
        balances = [
            (await run(session, BALANCE, id=i, p=position))["account"]["balance"]
            for i in (source, target)
        ]
        assert balances == ["3.00", "2.00"]


async def test_audit_log_and_projection_status_over_http(server: Server) -> None:
    async with http_session(server) as session:
        account_id = await open_account(session, "audited")
        query = """query($s: ID) { events(streamId: $s) {
                     edges { node { type version metadata { actor commandId } } } } }"""
        nodes: list[dict[str, Any]] = []
        for _ in range(100):  # the log shows sequenced events only: bounded wait
            log = await run(session, query, s=account_id)
            nodes = [edge["node"] for edge in log["events"]["edges"]]
            if nodes:
                break
            await asyncio.sleep(0.1)
        assert nodes[0]["type"] == "AccountOpened"
        assert nodes[0]["metadata"]["actor"] == "dev"
        status = await run(session, "{ projections { name state lagEvents } }")
        names = {p["name"] for p in status["projections"]}
        assert {"accounts", "account_statement", "transfers", "ledger"} <= names
