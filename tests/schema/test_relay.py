"""Relay conventions through the in-process schema: ``node(id:)``, PageInfo, last/before.

Given accounts and transfers, when a client asks ``node(id:)`` with their ids
(the same ``acc-``/``trf-`` ids every other field takes), then it gets what
``account(id:)``/``transfer(id:)`` would give that caller, and null, never an
error, for ids that are unknown, malformed or another user's. When it pages a
connection backwards with ``last``/``before``, it sees the rows of the forward
walk in the same order; mixing directions or oversize pages is a typed
``BAD_USER_INPUT`` error; the query cost weighs ``last`` as it weighs ``first``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from graphql import parse

from schema._engine.extensions import core_schema
from schema.app import build_schema
from schema.auth import AuthSettings, User
from schema.cost import Pages, query_cost
from schema.export import BANK
from tests.schema.helpers import TRANSFER, UNKNOWN_ACCOUNT, deposit, mutate, open_account
from tests.wiring import SECRET, Wiring, make_wiring

ALICE = User("alice")
BOB = User("bob")
ADMIN = User("root", frozenset({"admin"}))

NODE = """query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Account { owner balance version }
    ... on Transfer { fromAccountId toAccountId amount status }
  }
}"""
ACCOUNT = "query($id: ID!) { account(id: $id) { __typename id owner balance version } }"
TRANSFER_BY_ID = """query($id: ID!) {
  transfer(id: $id) { __typename id fromAccountId toAccountId amount status }
}"""
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
ACCOUNTS = (
    "query($first: Int, $after: String, $last: Int, $before: String) {"
    " accounts(first: $first, after: $after, last: $last, before: $before) {"
    " edges { cursor node { id } } " + PAGE_INFO + " } }"
)
TRANSFERS = (
    "query($a: ID, $first: Int, $after: String, $last: Int, $before: String) {"
    " transfers(accountId: $a, first: $first, after: $after, last: $last, before: $before) {"
    " edges { cursor node { id } } " + PAGE_INFO + " } }"
)
STATEMENT = (
    "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {"
    " account(id: $id) { statement(first: $first, after: $after, last: $last, before: $before)"
    " { edges { cursor node { version } } " + PAGE_INFO + " } } }"
)


async def transfer(w: Wiring, source: str, target: str, amount: str, user: User) -> str:
    result = await mutate(
        w, TRANSFER, user, fromAccountId=source, toAccountId=target, amount=amount
    )
    assert result["__typename"] == "TransferPayload", result
    return str(result["transfer"]["id"])


async def test_node_resolves_accounts_and_transfers_by_their_existing_ids(
    wiring: Wiring,
) -> None:
    source, target = await open_account(wiring, "ann"), await open_account(wiring, "ben")
    await deposit(wiring, source, "10")
    transfer_id = await transfer(wiring, source, target, "2.50", ADMIN)
    await wiring.project()

    account = (await wiring.data(NODE, {"id": source}))["node"]
    assert account == {
        "__typename": "Account",
        "id": source,
        "owner": "ann",
        "balance": "7.50",
        "version": 3,
    }
    found = (await wiring.data(NODE, {"id": transfer_id}))["node"]
    assert found == {
        "__typename": "Transfer",
        "id": transfer_id,
        "fromAccountId": source,
        "toAccountId": target,
        "amount": "2.50",
        "status": "COMPLETED",
    }
    # The connections hand out the same ids node(id:) takes.
    listed = (await wiring.data(ACCOUNTS, {"first": 10}))["accounts"]["edges"]
    assert {edge["node"]["id"] for edge in listed} == {source, target}


@pytest.mark.parametrize(
    "node_id",
    [
        UNKNOWN_ACCOUNT,
        "trf-" + "0" * 32,
        "nonsense",
        "",
        "acc-",
        "acc-" + "f" * 5000,
        base64.b64encode(b"Account:acc-" + b"0" * 32).decode(),  # strawberry's GlobalID form
        "usr-" + "0" * 32,
    ],
)
async def test_node_is_null_without_an_error_for_unknown_or_malformed_ids(
    wiring: Wiring, node_id: str
) -> None:
    await open_account(wiring)
    await wiring.project()
    assert (await wiring.data(NODE, {"id": node_id}))["node"] is None


async def test_node_applies_the_same_access_rules_as_account_and_transfer() -> None:
    """In jwt mode each caller's node(id:) equals its account(id:)/transfer(id:), null included."""
    w = await make_wiring(auth=AuthSettings(mode="jwt", jwt_secret=SECRET))
    alices = await open_account(w, "alice", user=ALICE)
    bobs = await open_account(w, "bob", user=BOB)
    carols = await open_account(w, "carol", user=ADMIN)
    await deposit(w, alices, "10", ALICE)
    await deposit(w, carols, "10", ADMIN)
    alice_to_bob = await transfer(w, alices, bobs, "1", ALICE)
    carol_to_bob = await transfer(w, carols, bobs, "1", ADMIN)
    await w.project()

    seen: dict[tuple[str, str], bool] = {}
    for user in (ALICE, BOB, ADMIN, User("dave")):
        for ids, query, field in (
            ((alices, bobs, carols), ACCOUNT, "account"),
            ((alice_to_bob, carol_to_bob), TRANSFER_BY_ID, "transfer"),
        ):
            for node_id in ids:
                direct = (await w.data(query, {"id": node_id}, user=user))[field]
                node = (await w.data(NODE, {"id": node_id}, user=user))["node"]
                assert node == (None if direct is None else {**node, **direct}), (user, node_id)
                seen[(user.name, node_id)] = node is not None
    assert not seen[("alice", bobs)]
    assert not seen[("alice", carol_to_bob)]
    assert seen[("bob", carol_to_bob)]
    assert not any(visible for (name, _), visible in seen.items() if name == "dave")
    assert all(visible for (name, _), visible in seen.items() if name == "root")


async def walk_both_ways(
    w: Wiring, query: str, path: tuple[str, ...], size: int, **fixed: Any
) -> tuple[list[Any], list[Any]]:
    """Every row forwards (first/after) and backwards (last/before), pages of ``size``."""

    async def connection(variables: dict[str, Any]) -> dict[str, Any]:
        found: Any = await w.data(query, {**fixed, **variables})
        for key in path:
            found = found[key]
        assert isinstance(found, dict)
        return found

    forward: list[Any] = []
    after = None
    for index in range(50):
        page = await connection({"first": size, "after": after})
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (index > 0)
        forward += [edge["node"] for edge in page["edges"]]
        after = info["endCursor"]
        if not info["hasNextPage"]:
            break
    backward: list[Any] = []
    before = None
    for index in range(50):
        page = await connection({"last": size, "before": before})
        info = page["pageInfo"]
        assert info["hasNextPage"] is (index > 0)
        backward = [edge["node"] for edge in page["edges"]] + backward
        assert info["startCursor"] == (page["edges"][0]["cursor"] if page["edges"] else None)
        before = info["startCursor"]
        if not info["hasPreviousPage"]:
            break
    return forward, backward


async def test_connections_page_backwards_across_page_boundaries(wiring: Wiring) -> None:
    accounts = [await open_account(wiring, owner) for owner in "abcdefg"]
    for amount in range(1, 8):
        await deposit(wiring, accounts[0], str(amount))
    for index in range(1, 6):
        await transfer(wiring, accounts[0], accounts[index], "1", ADMIN)
    await wiring.project()
    for index in range(1, 6):
        await transfer(wiring, accounts[index], accounts[0], "0.5", ADMIN)
    await wiring.project()

    forward, backward = await walk_both_ways(wiring, ACCOUNTS, ("accounts",), 3)
    assert forward == backward
    assert [node["id"] for node in forward] == sorted(accounts)

    forward, backward = await walk_both_ways(wiring, TRANSFERS, ("transfers",), 4, a=accounts[0])
    assert forward == backward
    assert len(forward) == 10

    forward, backward = await walk_both_ways(
        wiring, STATEMENT, ("account", "statement"), 3, id=accounts[0]
    )
    assert forward == backward
    assert [node["version"] for node in forward] == list(range(2, 2 + len(forward)))
    assert len(forward) == 7 + 10


async def test_mixed_directions_and_oversize_pages_are_typed_client_errors(
    wiring: Wiring,
) -> None:
    account = await open_account(wiring)
    await wiring.project()
    cursor = (await wiring.data(ACCOUNTS, {"first": 1}))["accounts"]["pageInfo"]["endCursor"]
    refused = [
        ({"first": 1, "last": 1}, "last: give first or last, not both"),
        ({"after": cursor, "before": cursor}, "before: give after or before, not both"),
        ({"first": 1, "before": cursor}, "before: before pages backwards"),
        ({"last": 1, "after": cursor}, "after: after pages forwards"),
        ({"last": 101}, "last must be between 1 and 100"),
        ({"last": 0}, "last must be between 1 and 100"),
        ({"last": 1, "before": "bogus"}, "before: invalid cursor"),
    ]
    for query, fixed in ((ACCOUNTS, {}), (TRANSFERS, {"a": account})):
        for variables, message in refused:
            result = await wiring.run(query, {**fixed, **variables})
            assert result.errors is not None, variables
            (error,) = result.errors
            assert message in error.message, (variables, error.message)
            assert (error.extensions or {}).get("code") == "BAD_USER_INPUT", variables
    statement = await wiring.run(STATEMENT, {"id": account, "first": 2, "last": 2})
    assert statement.errors is not None
    assert statement.errors[0].message.startswith("last: give first or last")


COST_SCHEMA = core_schema(build_schema(BANK))
PAGES = Pages(default=20, maximum=100)


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return query_cost(COST_SCHEMA, PAGES, parse(query), None, variables)


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ accounts(last: 5) { edges { node { id } } } }", None, 1 + 5 * 3),
        ("query($n: Int) { accounts(last: $n) { edges { node { id } } } }", {"n": 7}, 1 + 7 * 3),
        ("{ accounts(last: 1000000) { edges { node { id } } } }", None, 1 + 100 * 3),
        ("{ accounts(before: \"c\") { edges { node { id } } } }", None, 1 + 20 * 3),
        ("{ accounts(first: 2, last: 9) { edges { node { id } } } }", None, 1 + 9 * 3),
        ("{ transfers(last: 4) { edges { node { id } } } }", None, 1 + 4 * 3),
        ('{ account(id: "a") { statement(last: 6) { edges { node { version } } } } }', None,
         1 + 1 + 6 * 3),
        ('{ node(id: "a") { id } }', None, 2),
    ],
)  # fmt: skip
def test_the_query_cost_weighs_last_as_it_weighs_first(
    query: str, variables: dict[str, Any] | None, expected: int
) -> None:
    assert cost(query, variables) == expected
    first = query.replace("last:", "first:")
    if first != query and "first: 2" not in query:
        assert cost(first, variables) == expected
