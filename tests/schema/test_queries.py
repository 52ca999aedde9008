"""Queries over read models, time travel, history, audit log, status and consistency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.schema.helpers import TRANSFER, UNKNOWN_ACCOUNT, deposit, mutate, open_account
from tests.wiring import Wiring

ACCOUNT = """query($id: ID!, $v: Int, $t: DateTime, $c: Consistency) {
  account(id: $id, atVersion: $v, asOf: $t, consistency: $c) {
    id owner currency balance status version position openedAt updatedAt
  }
}"""


async def test_account_reads_the_read_model(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "12.30")
    await wiring.project()
    account = (await wiring.data(ACCOUNT, {"id": account_id}))["account"]
    assert account["balance"] == "12.30"
    assert (account["version"], account["position"], account["status"]) == (2, 2, "OPEN")
    assert account["openedAt"].endswith("Z")
    assert account["updatedAt"].endswith("Z")


async def test_unknown_account_is_null(wiring: Wiring) -> None:
    assert (await wiring.data(ACCOUNT, {"id": UNKNOWN_ACCOUNT}))["account"] is None
    assert (await wiring.data(ACCOUNT, {"id": "nonsense"}))["account"] is None


async def test_time_travel_by_version_and_by_time(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "1")
    await deposit(wiring, account_id, "2")
    at_two = (await wiring.data(ACCOUNT, {"id": account_id, "v": 2}))["account"]
    assert (at_two["balance"], at_two["version"], at_two["position"]) == ("1.00", 2, None)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    now = (await wiring.data(ACCOUNT, {"id": account_id, "t": future}))["account"]
    assert (now["balance"], now["version"]) == ("3.00", 3)
    past = "2000-01-01T00:00:00Z"
    assert (await wiring.data(ACCOUNT, {"id": account_id, "t": past}))["account"] is None


async def test_time_travel_needs_one_of_version_or_time(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    result = await wiring.run(ACCOUNT, {"id": account_id, "v": 1, "t": "2030-01-01T00:00:00Z"})
    assert result.errors
    assert "atVersion or asOf" in result.errors[0].message
    naive = await wiring.run(ACCOUNT, {"id": account_id, "t": "2030-01-01T00:00:00"})
    assert naive.errors
    assert "time zone" in naive.errors[0].message


ACCOUNTS = """query($first: Int, $after: String, $owner: String) {
  accounts(first: $first, after: $after, owner: $owner) {
    edges { cursor node { id owner } } pageInfo { hasNextPage endCursor }
  }
}"""


async def test_accounts_connection_pages_without_gaps(wiring: Wiring) -> None:
    ids = {await open_account(wiring, owner) for owner in ["a", "a", "a", "b", "a"]}
    await wiring.project()
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = (await wiring.data(ACCOUNTS, {"first": 2, "after": after}))["accounts"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert sorted(seen) == sorted(ids)
    only_b = (await wiring.data(ACCOUNTS, {"owner": "b"}))["accounts"]["edges"]
    assert [edge["node"]["owner"] for edge in only_b] == ["b"]


async def test_statement_lists_balance_changes(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "5")
    await wiring.data(
        "mutation($i: AmountInput!) { withdraw(input: $i) { __typename } }",
        {"i": {"accountId": account_id, "amount": "1.5"}},
    )
    await wiring.project()
    query = """query($id: ID!, $after: String) { account(id: $id) {
      statement(first: 1, after: $after) {
        edges { cursor node { version kind amount balance recordedAt } }
        pageInfo { hasNextPage endCursor } } } }"""
    first = (await wiring.data(query, {"id": account_id}))["account"]["statement"]
    assert first["edges"][0]["node"]["kind"] == "DEPOSIT"
    assert first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    rest = (await wiring.data(query, {"id": account_id, "after": after}))["account"]["statement"]
    node = rest["edges"][0]["node"]
    assert (node["kind"], node["amount"], node["balance"]) == ("WITHDRAWAL", "-1.50", "3.50")


async def test_transfer_completes_and_is_listed(wiring: Wiring) -> None:
    source, target = await open_account(wiring, "a"), await open_account(wiring, "b")
    await deposit(wiring, source, "10")
    result = await mutate(wiring, TRANSFER, fromAccountId=source, toAccountId=target, amount="4")
    transfer_id = result["transfer"]["id"]
    await wiring.project()
    one = await wiring.data(
        "query($id: ID!) { transfer(id: $id) { id status amount currency reason } }",
        {"id": transfer_id},
    )
    assert one["transfer"] == {
        "id": transfer_id,
        "status": "COMPLETED",
        "amount": "4.00",
        "currency": "EUR",
        "reason": None,
    }
    listed = await wiring.data(
        """query($a: ID) { transfers(accountId: $a, status: COMPLETED) {
             edges { node { id } } pageInfo { hasNextPage } } }""",
        {"a": target},
    )
    assert [e["node"]["id"] for e in listed["transfers"]["edges"]] == [transfer_id]
    balances = await wiring.data(
        "query($a: ID!, $b: ID!) { a: account(id: $a) { balance } b: account(id: $b) { balance } }",
        {"a": source, "b": target},
    )
    assert balances == {"a": {"balance": "6.00"}, "b": {"balance": "4.00"}}
    ledger = (await wiring.data("{ ledger { currency openAccounts totalBalance } }"))["ledger"]
    assert ledger == [{"currency": "EUR", "openAccounts": 2, "totalBalance": "10.00"}]


async def test_events_audit_log_with_metadata(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await wiring.data(
        "mutation($i: AmountInput!) { deposit(input: $i) { __typename } }",
        {"i": {"accountId": account_id, "amount": "1", "commandId": "c-1"}},
    )
    query = """query($after: Int!, $first: Int, $s: ID, $t: [String!]) {
      events(after: $after, first: $first, streamId: $s, types: $t) {
        edges { cursor node { position streamId version type data recordedAt
          metadata { commandId correlationId causationId actor } } }
        pageInfo { hasNextPage endCursor } } }"""
    page = (await wiring.data(query, {"after": 0, "first": 1}))["events"]
    assert page["pageInfo"] == {"hasNextPage": True, "endCursor": "1"}
    opened = page["edges"][0]["node"]
    assert (opened["type"], opened["streamId"], opened["position"]) == (
        "AccountOpened",
        account_id,
        1,
    )
    assert opened["data"]["owner"] == "alice"
    assert opened["metadata"]["actor"] == "dev"
    rest = (await wiring.data(query, {"after": 1, "t": ["MoneyDeposited"]}))["events"]
    node = rest["edges"][0]["node"]
    assert node["metadata"]["commandId"] == "dev:c-1"  # in the caller's namespace
    assert node["data"]["amount"] == 100
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_account_history_has_state_after_each_event(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "1")
    await deposit(wiring, account_id, "2")
    query = """query($id: ID!) { accountHistory(id: $id) {
        event { version type } account { balance version } } }"""
    history = (await wiring.data(query, {"id": account_id}))["accountHistory"]
    assert [(h["event"]["type"], h["account"]["balance"]) for h in history] == [
        ("AccountOpened", "0.00"),
        ("MoneyDeposited", "1.00"),
        ("MoneyDeposited", "3.00"),
    ]


async def test_projections_status(wiring: Wiring) -> None:
    await open_account(wiring)
    await wiring.project()
    status = await wiring.data("{ projections { name checkpoint head lagEvents state } }")
    by_name = {s["name"]: s for s in status["projections"]}
    assert by_name["accounts"]["checkpoint"] == by_name["accounts"]["head"] == 1
    assert by_name["accounts"]["lagEvents"] == 0


async def test_consistency_waits_for_the_read_model(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    version = await deposit(wiring, account_id, "7")

    async def project_later() -> None:
        await asyncio.sleep(0.05)
        await wiring.project()

    task = asyncio.create_task(project_later())
    try:
        consistency = {"streamId": account_id, "version": version}
        data = await wiring.data(ACCOUNT, {"id": account_id, "c": consistency})
        assert data["account"]["balance"] == "7.00"
        by_position = await wiring.data(ACCOUNT, {"id": account_id, "c": {"position": 2}})
        assert by_position["account"]["version"] == 2
    finally:
        await task


async def test_consistency_that_never_arrives_times_out(wiring: Wiring) -> None:
    from dataclasses import replace

    from schema.limits import Limits

    wiring.context = replace(wiring.context, limits=Limits(consistency_timeout_seconds=0.05))
    result = await wiring.run(ACCOUNT, {"id": UNKNOWN_ACCOUNT, "c": {"position": 99}})
    assert result.errors
    assert result.errors[0].extensions == {"code": "CONSISTENCY_TIMEOUT"}
