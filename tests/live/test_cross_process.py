"""Two real server processes on one database: a change made on A reaches a subscriber on B.

Covers every read-model subscription (accountChanged, transferChanged,
ledgerChanged) and the events feed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.live.helpers import take
from tests.runtime.processes import ServerProcess, clean_env, start_server

pytestmark = pytest.mark.e2e

OPEN = """
mutation ($owner: String!) {
  openAccount(input: {owner: $owner, currency: "EUR"}) { ... on AccountPayload { accountId } }
}
"""
DEPOSIT = """
mutation ($id: ID!, $amount: Decimal!) {
  deposit(input: {accountId: $id, amount: $amount}) { ... on AccountPayload { version } }
}
"""
TRANSFER = """
mutation ($from: ID!, $to: ID!, $amount: Decimal!) {
  requestTransfer(input: {fromAccountId: $from, toAccountId: $to, amount: $amount}) {
    ... on TransferPayload { transfer { id } }
  }
}
"""
ACCOUNT_CHANGED = "subscription ($id: ID!) { accountChanged(id: $id) { balance version } }"
TRANSFER_CHANGED = """
subscription ($id: ID!) { transferChanged(id: $id) { id amount status reason version } }
"""
LEDGER_CHANGED = """
subscription { ledgerChanged { currency openAccounts totalBalance totalDeposited position } }
"""
EVENTS = "subscription ($after: Int) { events(after: $after) { position streamId type } }"
READY_WITHIN = 60.0


@pytest.fixture
def servers(mongo_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = clean_env(
        MONGODB_URL=mongo_url,
        MONGODB_DATABASE=f"x_{uuid.uuid4().hex[:12]}",
        HOST="127.0.0.1",
        AUTH_MODE="dev",
        DATA_DIR=str(tmp_path / "data"),
        LOG_LEVEL="WARNING",
    )
    pair: list[ServerProcess] = []
    try:
        for _ in range(2):
            pair.append(start_server(tmp_path, env))
        for server in pair:
            server.wait_until("/readyz", READY_WITHIN)
        yield pair[0], pair[1]
    finally:
        for server in pair:
            server.stop()


def _request(text: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(text, variable_values=variables)


async def _execute(url: str, text: str, **variables: Any) -> dict[str, Any]:
    async with Client(transport=HTTPXAsyncTransport(url=url, timeout=30)) as session:
        result: dict[str, Any] = await session.execute(_request(text, **variables))
        return result


async def _open(server: ServerProcess, owner: str, deposit: str | None = None) -> str:
    opened = await _execute(server.http, OPEN, owner=owner)
    account_id: str = opened["openAccount"]["accountId"]
    if deposit is not None:
        await _execute(server.http, DEPOSIT, id=account_id, amount=deposit)
    return account_id


async def _until(
    stream: AsyncIterator[dict[str, Any]], field: str, done: Any, within: float = 30.0
) -> Any:
    """Read ``field`` messages (latest-only: some may be skipped) until ``done(message)``."""
    async with asyncio.timeout(within):
        while True:
            message = (await take(stream, 1, within=within))[0][field]
            if done(message):
                return message


def _session(server: ServerProcess, protocol: str) -> Client:
    transport = WebsocketsTransport(url=server.ws, subprotocols=[protocol])
    return Client(transport=transport, fetch_schema_from_transport=False)


async def test_subscribers_on_b_see_changes_made_on_a_over_both_protocols(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    after = 0
    protocols = (WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL)
    for protocol in protocols:
        after = await _deposits_on_a_reach_b(a, b, protocol, after)


async def _deposits_on_a_reach_b(
    a: ServerProcess, b: ServerProcess, protocol: str, after: int
) -> int:
    """Open an account and deposit 3 times on A; B's subscribers see it all. Returns the head."""
    account_id = await _open(a, "alice")
    async with _session(b, protocol) as session:
        changes = session.subscribe(_request(ACCOUNT_CHANGED, id=account_id))
        events = session.subscribe(_request(EVENTS, after=after))
        initial = (await take(changes, 1, within=30))[0]["accountChanged"]
        assert (initial["balance"], initial["version"]) == ("0.00", 1)
        opened_event = (await take(events, 1, within=30))[0]["events"]
        assert (opened_event["streamId"], opened_event["type"]) == (account_id, "AccountOpened")
        for amount in ("1.00", "2.00", "3.00"):
            await _execute(a.http, DEPOSIT, id=account_id, amount=amount)
        seen = await _until(changes, "accountChanged", lambda m: m["version"] == 4)
        assert seen["balance"] == "6.00"
        deposits = [e["events"] for e in await take(events, 3, within=30)]
        assert [e["type"] for e in deposits] == ["MoneyDeposited"] * 3
        positions = [opened_event["position"]] + [e["position"] for e in deposits]
        assert positions == list(range(after + 1, after + 5))
        await changes.aclose()
        await events.aclose()
    return after + 4


async def test_transfer_and_ledger_changes_made_on_a_reach_b(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    source = await _open(a, "alice", deposit="10.00")
    target = await _open(a, "bob")
    async with _session(b, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL) as session:
        ledger = session.subscribe(_request(LEDGER_CHANGED))
        totals = await _until(ledger, "ledgerChanged", lambda m: _eur(m)["openAccounts"] == 2)
        assert _eur(totals)["totalBalance"] == "10.00"
        requested = await _execute(a.http, TRANSFER, **{"from": source, "to": target}, amount="4")
        transfer_id = requested["requestTransfer"]["transfer"]["id"]
        changes = session.subscribe(_request(TRANSFER_CHANGED, id=transfer_id))
        done = await _until(changes, "transferChanged", lambda m: m["status"] == "COMPLETED")
        assert (done["id"], done["amount"], done["reason"]) == (transfer_id, "4.00", None)
        await _execute(a.http, DEPOSIT, id=target, amount="2.50")
        latest = await _until(
            ledger, "ledgerChanged", lambda m: _eur(m)["totalDeposited"] == "12.50"
        )
        assert _eur(latest)["totalBalance"] == "12.50"
        await changes.aclose()
        await ledger.aclose()


def _eur(ledger: list[dict[str, Any]]) -> dict[str, Any]:
    """The EUR totals of a ``ledgerChanged`` message (zeros before the first account)."""
    rows = [row for row in ledger if row["currency"] == "EUR"]
    return rows[0] if rows else {"openAccounts": 0, "totalBalance": "0.00", "totalDeposited": ""}
