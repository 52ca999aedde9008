"""Bad input never appends and always gets a clear typed or GraphQL validation error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.schema.helpers import (
    CLOSE,
    DEPOSIT,
    OPEN,
    TRANSFER,
    UNKNOWN_ACCOUNT,
    WITHDRAW,
    deposit,
    mutate,
    open_account,
)
from tests.wiring import Wiring

MEGABYTE = "x" * 1_000_000


@pytest.fixture
async def funded(wiring: Wiring) -> str:
    account_id = await open_account(wiring)
    await deposit(wiring, account_id, "100")
    return account_id


async def errors_of(w: Wiring, query: str, variables: dict[str, Any] | None = None) -> list[str]:
    result = await w.run(query, variables)
    assert result.errors, result.data
    return [error.message for error in result.errors]


@pytest.mark.parametrize(
    "amount",
    [
        "-1",
        "0",
        "0.00",
        "NaN",
        "nan",
        "Infinity",
        "-0",
        "0.001",
        "1e3",
        "1,00",
        "",
        " ",
        "1.2.3",
        "0x10",
        "1_000",
        "\u0661",
        "10000000000000.01",
        "99999999999999999999999",
        "+1",
        MEGABYTE,
    ],
)
async def test_bad_amounts_are_invalid_input(wiring: Wiring, funded: str, amount: str) -> None:
    before = await wiring.event_count()
    for query in (DEPOSIT, WITHDRAW):
        result = await mutate(wiring, query, accountId=funded, amount=amount)
        assert result["__typename"] == "InvalidInput", result
        assert result["field"] == "amount"
        assert result["message"]
    other = await open_account(wiring, "bob")
    transfer = await mutate(
        wiring, TRANSFER, fromAccountId=funded, toAccountId=other, amount=amount
    )
    assert (transfer["__typename"], transfer["field"]) == ("InvalidInput", "amount")
    assert await wiring.event_count() == before + 1  # only bob's account


@pytest.mark.parametrize("amount", [10.5, 10, True, None, [], {"v": "1"}])
async def test_amounts_that_are_not_strings_fail_validation(
    wiring: Wiring, funded: str, amount: object
) -> None:
    before = await wiring.event_count()
    messages = await errors_of(wiring, DEPOSIT, {"i": {"accountId": funded, "amount": amount}})
    assert any("amount" in m or "Decimal" in m for m in messages), messages
    assert await wiring.event_count() == before


async def test_float_literal_amount_fails_validation(wiring: Wiring, funded: str) -> None:
    query = (
        f'mutation {{ deposit(input: {{accountId: "{funded}", amount: 1.5}}) {{ __typename }} }}'
    )
    messages = await errors_of(wiring, query)
    assert "Decimal" in messages[0]


@pytest.mark.parametrize(
    "account_id",
    [
        "",
        "acc-",
        "acc-XYZ",
        "acc-" + "G" * 32,
        "acc-" + "A" * 32,
        UNKNOWN_ACCOUNT + "0",
        "trf-" + "0" * 32,
        "../../etc/passwd",
        "acc-0000' OR 1=1 --",
        '{"$gt": ""}',
        MEGABYTE,
    ],
)
async def test_forged_or_malformed_ids_are_invalid_input(wiring: Wiring, account_id: str) -> None:
    await open_account(wiring)
    before = await wiring.event_count()
    for query in (DEPOSIT, WITHDRAW):
        result = await mutate(wiring, query, accountId=account_id, amount="1")
        assert (result["__typename"], result["field"]) == ("InvalidInput", "accountId")
    closed = await mutate(wiring, CLOSE, accountId=account_id)
    assert (closed["__typename"], closed["field"]) == ("InvalidInput", "accountId")
    assert await wiring.event_count() == before


async def test_tampered_but_well_formed_id_is_account_not_found(
    wiring: Wiring, funded: str
) -> None:
    tampered = funded[:-1] + ("0" if funded[-1] != "0" else "1")
    before = await wiring.event_count()
    result = await mutate(wiring, DEPOSIT, accountId=tampered, amount="1")
    assert result["__typename"] == "AccountNotFound"
    assert await wiring.event_count() == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"owner": MEGABYTE, "currency": "EUR"}, "owner"),
        ({"owner": "a\x00b", "currency": "EUR"}, "owner"),
        ({"owner": "a", "currency": MEGABYTE}, "currency"),
        ({"owner": "a", "currency": "EUR", "commandId": MEGABYTE}, "commandId"),
        ({"owner": "a", "currency": "EUR", "commandId": ""}, "commandId"),
        ({"owner": "a", "currency": "EUR", "commandId": "caf\u00e9"}, "commandId"),
    ],
)
async def test_huge_or_odd_strings_are_invalid_input(
    wiring: Wiring, fields: dict[str, Any], field: str
) -> None:
    result = await mutate(wiring, OPEN, **fields)
    assert (result["__typename"], result["field"]) == ("InvalidInput", field)
    assert await wiring.event_count() == 0


async def test_negative_expected_version_is_invalid_input(wiring: Wiring, funded: str) -> None:
    before = await wiring.event_count()
    result = await mutate(wiring, DEPOSIT, accountId=funded, amount="1", expectedVersion=-1)
    assert (result["__typename"], result["field"]) == ("InvalidInput", "expectedVersion")
    assert await wiring.event_count() == before


async def test_transfer_to_itself_is_refused(wiring: Wiring, funded: str) -> None:
    before = await wiring.event_count()
    result = await mutate(wiring, TRANSFER, fromAccountId=funded, toAccountId=funded, amount="1")
    assert result["__typename"] == "InvalidInput"
    assert await wiring.event_count() == before


@pytest.mark.parametrize(
    "query",
    [
        "mutation { deposit(input: {",
        "{ account(id: ) { id } }",
        "query { ",
        "}",
        "mutation { nope }",
        "{ account { id } }",
        "{ account(id: 1.5) { id } }",
        '{ account(id: "x") { balance { x } } }',
        "{ " * 10_000,
    ],
)
async def test_malformed_graphql_is_a_clear_error(wiring: Wiring, query: str) -> None:
    messages = await errors_of(wiring, query)
    assert all(messages)
    assert await wiring.event_count() == 0


async def test_wrong_variable_types_fail_validation(wiring: Wiring, funded: str) -> None:
    before = await wiring.event_count()
    cases: list[dict[str, Any]] = [
        {"accountId": funded},
        {"accountId": [12], "amount": "1"},
        {"accountId": funded, "amount": "1", "expectedVersion": "one"},
        {"accountId": funded, "amount": "1", "extra": True},
    ]
    for fields in cases:
        assert await errors_of(wiring, DEPOSIT, {"i": fields})
    assert await errors_of(wiring, DEPOSIT, {"i": "not an object"})
    assert await errors_of(wiring, DEPOSIT, {})
    assert await wiring.event_count() == before


async def test_unknown_enum_value_fails_validation(wiring: Wiring) -> None:
    messages = await errors_of(wiring, "{ transfers(status: LOST) { edges { cursor } } }")
    assert "LOST" in messages[0]
    variables = {"s": "LOST"}
    query = "query($s: TransferStatus) { transfers(status: $s) { edges { cursor } } }"
    assert "LOST" in (await errors_of(wiring, query, variables))[0]


@pytest.mark.parametrize(
    "after", ["nonsense", "", "!!!", "W10", "eyJ4IjoxfQ", "WyJ0cmFuc2ZlcnMiLFsxXV0", "a" * 5000]
)
async def test_invalid_cursors_are_clear_errors(wiring: Wiring, after: str) -> None:
    await open_account(wiring)
    await wiring.project()
    for field in ("accounts", "transfers"):
        query = f"query($a: String) {{ {field}(after: $a) {{ edges {{ cursor }} }} }}"
        result = await wiring.run(query, {"a": after})
        assert result.errors, result.data
        assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}
        assert "cursor" in result.errors[0].message


@pytest.mark.parametrize("first", [0, -1, 101, 10_000, 2**31 - 1])
async def test_page_sizes_out_of_range_are_clear_errors(wiring: Wiring, first: int) -> None:
    for query in (
        "query($f: Int) { accounts(first: $f) { edges { cursor } } }",
        "query($f: Int) { transfers(first: $f) { edges { cursor } } }",
        "query($f: Int) { events(first: $f) { edges { cursor } } }",
    ):
        result = await wiring.run(query, {"f": first})
        assert result.errors, result.data
        assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}
        assert "first" in result.errors[0].message


ACC = "acc-" + "1" * 32


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        (f'{{ account(id: "{ACC}", atVersion: 1, asOf: "2030-01-01T00:00:00Z") {{ id }} }}',
         "atVersion"),
        (f'{{ account(id: "{ACC}", atVersion: 0) {{ id }} }}', "atVersion"),
        (f'{{ accountHistory(id: "{ACC}", fromVersion: 0) {{ account {{ id }} }} }}',
         "fromVersion"),
        ("{ events(after: -1) { edges { cursor } } }", "after"),
        ("{ events(types: [" + ", ".join(['"T"'] * 51) + "]) { edges { cursor } } }", "types"),
        ("{ accounts(consistency: {position: -1}) { edges { cursor } } }", "position"),
        ("{ accounts(consistency: {version: 3}) { edges { cursor } } }", "consistency"),
        ('{ ledger(consistency: {streamId: "x-1", version: 1}) { currency } }', "streamId"),
    ],
    ids=["atVersion-and-asOf", "atVersion-0", "fromVersion-0", "events-after-negative",
         "too-many-types", "negative-position", "incomplete-consistency", "foreign-stream"],
)  # fmt: skip
async def test_every_invalid_argument_is_bad_user_input(
    wiring: Wiring, query: str, mentions: str
) -> None:
    result = await wiring.run(query)
    assert result.errors, result.data
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}
    assert mentions in result.errors[0].message


async def test_int_overflow_is_a_validation_error(wiring: Wiring) -> None:
    messages = await errors_of(wiring, "{ accounts(first: 99999999999) { edges { cursor } } }")
    assert "Int" in messages[0]


async def test_server_keeps_serving_after_bad_input(wiring: Wiring) -> None:
    await errors_of(wiring, "{ " * 10_000)
    account_id = await open_account(wiring)
    assert await deposit(wiring, account_id, "1") == 2


async def test_huge_ids_in_queries_find_nothing(wiring: Wiring) -> None:
    queries = [
        "query($id: ID!) { account(id: $id) { id } }",
        "query($id: ID!) { account(id: $id, atVersion: 1) { id } }",
        "query($id: ID!) { transfer(id: $id) { id } }",
        "query($id: ID!) { accountHistory(id: $id) { event { type } } }",
    ]
    for query in queries:
        data = await wiring.data(query, {"id": MEGABYTE})
        assert next(iter(data.values())) in (None, [])
