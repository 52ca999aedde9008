"""Query cost and the linear depth/alias checks, in process (``schema.cost``, ``schema.limits``).

The real-server behaviour (status codes, healthz while a hostile request is in
flight, timeouts) is in ``test_bounded_work.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError, parse

from schema._engine.extensions import core_schema
from schema.app import build_schema
from schema.cost import Pages, fragments_in_order, query_cost
from schema.export import BANK
from schema.limits import QUERY_TOO_COSTLY, Limits, document_problems
from tests.wiring import make_wiring

SCHEMA = core_schema(build_schema(BANK))
PAGES = Pages(default=20, maximum=100)

HISTORY = (
    'accountHistory(id: "x", first: 100) '
    "{ account { statement(first: 100) { edges { node { amount balance } } } } }"
)
HOSTILE_HISTORY = "{ " + " ".join(f"a{i}: {HISTORY}" for i in range(10)) + " }"


def doubling(levels: int, leaf: str = "__typename") -> str:
    """Fragments each spreading the previous one twice: 2**levels leaves once expanded."""
    parts = [f"fragment F0 on Query {{ {leaf} }}"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return " ".join(parts) + f" {{ ...F{levels} }}"


def cost(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> int:
    return query_cost(SCHEMA, PAGES, parse(query, max_tokens=100_000), name, variables)


def code_of(error: GraphQLError) -> object:
    return (error.extensions or {}).get("code")


def test_the_issues_history_query_is_priced_by_pages_nesting_and_replay() -> None:
    # Per alias: 1 + replay (fromVersion 1 + 100 - 1) + 100 entries x account
    # (1 + statement (1 + 100 edges x (edge 1 + node 1 + two fields))).
    assert cost(HOSTILE_HISTORY) == 10 * (1 + 100 + 100 * (1 + (1 + 100 * 4)))


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ accounts { edges { node { id } } } }", None, 1 + 20 * 3),
        ("{ accounts(first: 5) { edges { node { id } } } }", None, 1 + 5 * 3),
        ("query($n: Int) { accounts(first: $n) { edges { node { id } } } }", {"n": 7}, 1 + 7 * 3),
        ("query($n: Int = 9) { accounts(first: $n) { edges { node { id } } } }", None, 1 + 9 * 3),
        ("query($n: Int = 9) { accounts(first: $n) { edges { node { id } } } }", {"n": 2}, 7),
        ("query($n: Int) { accounts(first: $n) { edges { node { id } } } }", None, 1 + 20 * 3),
        # Not a page size the resolver takes: counted at the maximum (an upper bound).
        ("query($n: Int) { accounts(first: $n) { edges { node { id } } } }", {"n": "x"}, 301),
        ("{ accounts(first: 1000000) { edges { node { id } } } }", None, 1 + 100 * 3),
        ('{ account(id: "a") { id } }', None, 2),
        ('{ account(id: "a", atVersion: 3) { id } }', None, 2 + 100),
        ('query($t: DateTime) { account(id: "a", asOf: $t) { id } }', {"t": "2026-01-01"}, 102),
        ('{ accountHistory(id: "a", fromVersion: 1000, first: 10) { event { type } } }', None,
         1 + 1009 + 10 * 2),
    ],
)  # fmt: skip
def test_cost_counts_pages_variables_and_replay(
    query: str, variables: dict[str, Any] | None, expected: int
) -> None:
    assert cost(query, variables) == expected


def test_the_cost_follows_the_variables_of_each_request_on_one_document() -> None:
    document = parse("query($n: Int) { accounts(first: $n) { edges { cursor } } }")
    seen = [query_cost(SCHEMA, PAGES, document, None, {"n": n}) for n in (1, 50, 1, 100)]
    assert seen == [1 + 1 * 2, 1 + 50 * 2, 1 + 1 * 2, 1 + 100 * 2]


def test_the_selected_operation_is_priced() -> None:
    query = (
        "query Small { ledger { currency } } "
        "query Big { accounts(first: 100) { edges { cursor } } }"
    )
    assert cost(query, name="Small") == 2
    assert cost(query, name="Big") == 201
    assert cost(query) == 0  # no operation is picked: execution refuses the request


def test_subscriptions_and_mutations_get_a_cost() -> None:
    assert cost('subscription { accountChanged(id: "a") { id balance } }') == 3
    deposit = (
        'mutation { deposit(input: {accountId: "a", amount: "1"}) { ... on AccountPayload '
        "{ version account { statement(first: 10) { edges { cursor } } } } } }"
    )
    assert cost(deposit) == 1 + 1 + 1 + (1 + 10 * 2)


def test_an_exponential_fragment_chain_is_priced_in_linear_time() -> None:
    # 2**300 leaves once expanded: any walk that follows every spread never ends.
    assert cost(doubling(300)) == 2**53  # saturated
    assert not document_problems(parse(doubling(300), max_tokens=100_000), Limits())


def test_a_fragment_cycle_does_not_loop() -> None:
    query = "fragment A on Query { ledger { currency } ...B } fragment B on Query { ...A } { ...A }"
    assert cost(query) in (2, 4)
    names = [f.name.value for f in fragments_in_order(parse(query))]
    assert sorted(names) == ["A", "B"]


def test_a_long_chain_of_fragments_does_not_exhaust_the_recursion_limit() -> None:
    parts = ["fragment F0 on Query { __typename }"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} }}" for i in range(1, 5_000)]
    query = " ".join(parts) + " { ...F4999 }"
    assert cost(query) == 1
    assert not document_problems(parse(query, max_tokens=100_000), Limits())


def test_depth_and_aliases_count_every_spread() -> None:
    aliases = "fragment A on Query { a: __typename b: __typename } { ...A ...A x: __typename }"
    problems = document_problems(parse(aliases), Limits(max_aliases=4))
    assert [p.message for p in problems] == ["5 aliases found. Allowed: 4"]
    deep = (
        "fragment S on Account { statement { edges { node { version } } } } "
        '{ account(id: "x") { ...S } }'
    )
    problems = document_problems(parse(deep), Limits(max_query_depth=3))
    assert [p.message for p in problems] == ["'anonymous' exceeds maximum operation depth of 3"]
    assert not document_problems(parse(deep), Limits(max_query_depth=4))


async def test_a_costly_query_is_refused_before_execution_with_its_cost() -> None:
    wiring = await make_wiring()
    result = await wiring.run(HOSTILE_HISTORY)
    assert result.data is None
    assert result.errors is not None
    [error] = result.errors
    assert code_of(error) == QUERY_TOO_COSTLY
    assert error.extensions is not None
    assert error.extensions["cost"] == cost(HOSTILE_HISTORY)
    assert error.extensions["limit"] == Limits().max_query_cost
    assert result.extensions == {
        "cost": {"requested": cost(HOSTILE_HISTORY), "limit": Limits().max_query_cost}
    }


async def test_every_response_reports_its_cost() -> None:
    wiring = await make_wiring()
    ok = await wiring.run("{ ledger { currency } }")
    assert ok.errors is None
    assert ok.extensions == {"cost": {"requested": 2, "limit": 10_000}}
    invalid = await wiring.run("{ nothing }")
    assert invalid.errors
    assert invalid.extensions == {"cost": {"requested": 1, "limit": 10_000}}


async def test_the_cost_limit_is_a_setting() -> None:
    wiring = await make_wiring(Limits(max_query_cost=60))
    assert (await wiring.run("{ accounts(first: 19) { edges { cursor } } }")).errors is None
    result = await wiring.run("{ accounts(first: 30) { edges { cursor } } }")
    assert result.errors
    assert code_of(result.errors[0]) == QUERY_TOO_COSTLY


async def test_fields_repeated_under_one_name_are_refused_within_a_bounded_budget() -> None:
    wiring = await make_wiring()
    # graphql-core compares every pair of same-named fields; its budget ends that.
    query = "{" + " ledger { currency }" * 490 + "}"
    result = await wiring.run(query)
    assert result.errors
    assert result.data is None
