"""Every mutation: success, and each typed error it can return; refusals append nothing."""

from __future__ import annotations

from typing import Any

import pytest

from domain.accounts import BalanceNotZero
from domain.money import format_amount
from schema.errors import BalanceNotZero as BalanceNotZeroType
from schema.errors import error_from_domain
from tests.wiring import Wiring

ACCOUNT_FIELDS = """
  __typename
  ... on Error { message }
  ... on AccountPayload { accountId version position duplicate
      account { id owner currency balance status version openedAt updatedAt } }
  ... on InvalidInput { field }
  ... on InsufficientFunds { accountId balance requested currency }
  ... on AccountNotFound { accountId }
  ... on AccountClosed { accountId }
  ... on BalanceNotZero { accountId balance currency }
  ... on ConcurrencyConflict { streamId expectedVersion actualVersion }
  ... on IdempotencyKeyReused { originalCommandType }
"""
OPEN = "mutation($i: OpenAccountInput!) { openAccount(input: $i) {" + ACCOUNT_FIELDS + "} }"
DEPOSIT = "mutation($i: AmountInput!) { deposit(input: $i) {" + ACCOUNT_FIELDS + "} }"
WITHDRAW = "mutation($i: AmountInput!) { withdraw(input: $i) {" + ACCOUNT_FIELDS + "} }"
CLOSE = "mutation($i: CloseAccountInput!) { closeAccount(input: $i) {" + ACCOUNT_FIELDS + "} }"
TRANSFER = """mutation($i: RequestTransferInput!) { requestTransfer(input: $i) {
  __typename
  ... on Error { message }
  ... on TransferPayload { version position duplicate
      transfer { id fromAccountId toAccountId amount status reason requestedAt } }
  ... on InvalidInput { field }
  ... on AccountNotFound { accountId }
  ... on InsufficientFunds { accountId }
  ... on IdempotencyKeyReused { originalCommandType }
} }"""
UNKNOWN = "acc-" + "0" * 32


async def open_account(w: Wiring, owner: str = "alice", currency: str = "EUR") -> str:
    data = await w.data(OPEN, {"i": {"owner": owner, "currency": currency}})
    result = data["openAccount"]
    assert result["__typename"] == "AccountPayload", result
    return str(result["accountId"])


async def mutate(w: Wiring, query: str, field: str, **fields: Any) -> dict[str, Any]:
    data = await w.data(query, {"i": fields})
    result: dict[str, Any] = data[field]
    return result


async def test_open_account_returns_the_account_and_its_version(wiring: Wiring) -> None:
    data = await wiring.data(OPEN, {"i": {"owner": "alice", "currency": "eur"}})
    result = data["openAccount"]
    assert result["__typename"] == "AccountPayload"
    assert result["version"] == 1
    assert result["position"] == 1
    assert result["duplicate"] is False
    account = result["account"]
    assert account["id"] == result["accountId"]
    assert account["id"].startswith("acc-")
    assert (account["owner"], account["currency"], account["balance"]) == ("alice", "EUR", "0.00")
    assert account["status"] == "OPEN"
    assert account["openedAt"].endswith("Z")


async def test_deposit_and_withdraw_move_the_balance_exactly(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    deposited = await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="10.10")
    assert deposited["version"] == 2
    assert deposited["account"]["balance"] == "10.10"
    withdrawn = await mutate(wiring, WITHDRAW, "withdraw", accountId=account_id, amount="0.20")
    assert withdrawn["version"] == 3
    assert withdrawn["account"]["balance"] == "9.90"


async def test_withdraw_beyond_the_balance_is_insufficient_funds(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="5")
    before = await wiring.event_count()
    result = await mutate(wiring, WITHDRAW, "withdraw", accountId=account_id, amount="5.01")
    assert result["__typename"] == "InsufficientFunds"
    assert (result["balance"], result["requested"], result["currency"]) == ("5.00", "5.01", "EUR")
    assert result["message"]
    assert await wiring.event_count() == before


async def test_unknown_account_is_account_not_found(wiring: Wiring) -> None:
    for query, field in ((DEPOSIT, "deposit"), (WITHDRAW, "withdraw")):
        result = await mutate(wiring, query, field, accountId=UNKNOWN, amount="1")
        assert result["__typename"] == "AccountNotFound"
        assert result["accountId"] == UNKNOWN
    result = await mutate(wiring, CLOSE, "closeAccount", accountId=UNKNOWN)
    assert result["__typename"] == "AccountNotFound"
    assert await wiring.event_count() == 0


async def test_close_needs_zero_balance_then_refuses_everything(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="1")
    refused = await mutate(wiring, CLOSE, "closeAccount", accountId=account_id)
    assert refused["__typename"] == "BalanceNotZero"
    assert refused["balance"] == "1.00"
    await mutate(wiring, WITHDRAW, "withdraw", accountId=account_id, amount="1")
    closed = await mutate(wiring, CLOSE, "closeAccount", accountId=account_id)
    assert closed["__typename"] == "AccountPayload"
    assert closed["account"]["status"] == "CLOSED"
    before = await wiring.event_count()
    again = await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="1")
    assert again["__typename"] == "AccountClosed"
    assert again["accountId"] == account_id
    assert await wiring.event_count() == before


async def test_expected_version_mismatch_is_a_concurrency_conflict(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    ok = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="1", expectedVersion=1
    )
    assert ok["version"] == 2
    stale = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="1", expectedVersion=1
    )
    assert stale["__typename"] == "ConcurrencyConflict"
    assert (stale["streamId"], stale["expectedVersion"], stale["actualVersion"]) == (
        account_id,
        1,
        2,
    )
    assert await wiring.event_count() == 2


async def test_repeated_command_id_returns_the_first_outcome(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    first = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="3", commandId="dep-1"
    )
    again = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="3", commandId="dep-1"
    )
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["version"] == first["version"] == 2
    assert again["account"]["balance"] == "3.00"
    assert await wiring.event_count() == 2


async def test_repeated_open_account_command_id_returns_the_same_account(wiring: Wiring) -> None:
    first = await mutate(wiring, OPEN, "openAccount", owner="a", currency="EUR", commandId="o1")
    again = await mutate(wiring, OPEN, "openAccount", owner="a", currency="EUR", commandId="o1")
    assert again["accountId"] == first["accountId"]
    assert again["duplicate"] is True
    assert await wiring.event_count() == 1


async def test_repeated_rejected_command_id_returns_the_same_rejection(wiring: Wiring) -> None:
    account_id = await open_account(wiring)
    args = {"accountId": account_id, "amount": "1", "commandId": "w-1"}
    first = await mutate(wiring, WITHDRAW, "withdraw", **args)
    await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="5")
    again = await mutate(wiring, WITHDRAW, "withdraw", **args)
    assert first["__typename"] == again["__typename"] == "InsufficientFunds"


async def test_request_transfer_returns_a_requested_transfer(wiring: Wiring) -> None:
    source, target = await open_account(wiring), await open_account(wiring, "bob")
    await mutate(wiring, DEPOSIT, "deposit", accountId=source, amount="10")
    result = await mutate(
        wiring, TRANSFER, "requestTransfer", fromAccountId=source, toAccountId=target, amount="2.5"
    )
    assert result["__typename"] == "TransferPayload"
    transfer = result["transfer"]
    assert transfer["id"].startswith("trf-")
    assert (transfer["fromAccountId"], transfer["toAccountId"]) == (source, target)
    assert (transfer["amount"], transfer["status"], transfer["reason"]) == (
        "2.50",
        "REQUESTED",
        None,
    )
    assert result["version"] == 1


async def test_transfer_to_an_unknown_account_is_refused_up_front(wiring: Wiring) -> None:
    source = await open_account(wiring)
    before = await wiring.event_count()
    result = await mutate(
        wiring, TRANSFER, "requestTransfer", fromAccountId=source, toAccountId=UNKNOWN, amount="1"
    )
    assert result["__typename"] == "AccountNotFound"
    assert result["accountId"] == UNKNOWN
    assert await wiring.event_count() == before


@pytest.mark.parametrize(
    ("owner", "currency", "field"),
    [
        ("", "EUR", "owner"),
        ("   ", "EUR", "owner"),
        ("x" * 201, "EUR", "owner"),
        ("al", "EURO", "currency"),
        ("al", "", "currency"),
        ("al", "€€€", "currency"),
    ],
)
async def test_open_account_bad_input_is_invalid_input(
    wiring: Wiring, owner: str, currency: str, field: str
) -> None:
    result = await mutate(wiring, OPEN, "openAccount", owner=owner, currency=currency)
    assert result["__typename"] == "InvalidInput"
    assert result["field"] == field
    assert await wiring.event_count() == 0


async def test_command_id_reused_for_another_command_is_idempotency_key_reused(
    wiring: Wiring,
) -> None:
    account_id = await open_account(wiring)
    other = await open_account(wiring, "bob")
    await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="5", commandId="k")
    before = await wiring.event_count()
    reused = [
        await mutate(wiring, DEPOSIT, "deposit", accountId=account_id, amount="6", commandId="k"),
        await mutate(wiring, WITHDRAW, "withdraw", accountId=account_id, amount="5", commandId="k"),
        await mutate(wiring, DEPOSIT, "deposit", accountId=other, amount="5", commandId="k"),
        await mutate(wiring, CLOSE, "closeAccount", accountId=account_id, commandId="k"),
        await mutate(wiring, OPEN, "openAccount", owner="c", currency="EUR", commandId="k"),
        await mutate(
            wiring,
            TRANSFER,
            "requestTransfer",
            fromAccountId=account_id,
            toAccountId=other,
            amount="5",
            commandId="k",
        ),
    ]
    for result in reused:
        assert result["__typename"] == "IdempotencyKeyReused", result
        assert result["originalCommandType"] == "Deposit"
    assert await wiring.event_count() == before
    again = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="5", commandId="k"
    )
    assert (again["__typename"], again["duplicate"], again["version"]) == (
        "AccountPayload",
        True,
        2,
    )


async def test_a_rejected_command_id_reused_for_another_command_is_refused(
    wiring: Wiring,
) -> None:
    account_id = await open_account(wiring)
    first = await mutate(
        wiring, WITHDRAW, "withdraw", accountId=account_id, amount="9", commandId="r"
    )
    assert first["__typename"] == "InsufficientFunds"

    other = await mutate(
        wiring, DEPOSIT, "deposit", accountId=account_id, amount="9", commandId="r"
    )
    more = await mutate(
        wiring, WITHDRAW, "withdraw", accountId=account_id, amount="8", commandId="r"
    )
    same = await mutate(
        wiring, WITHDRAW, "withdraw", accountId=account_id, amount="9", commandId="r"
    )

    assert (other["__typename"], other["originalCommandType"]) == (
        "IdempotencyKeyReused",
        "Withdraw",
    )
    assert more["__typename"] == "IdempotencyKeyReused"
    assert same["__typename"] == "InsufficientFunds"
    assert await wiring.event_count() == 1


async def test_open_account_and_transfer_repeats_name_the_same_aggregate(wiring: Wiring) -> None:
    """A creating command derives its new id from its command id: a repeat is the same command."""
    source, target = await open_account(wiring), await open_account(wiring, "bob")
    await mutate(wiring, DEPOSIT, "deposit", accountId=source, amount="10")
    args = {"fromAccountId": source, "toAccountId": target, "amount": "4", "commandId": "t"}
    first = await mutate(wiring, TRANSFER, "requestTransfer", **args)
    again = await mutate(wiring, TRANSFER, "requestTransfer", **args)
    other = await mutate(wiring, TRANSFER, "requestTransfer", **{**args, "amount": "3"})
    usd = await mutate(wiring, OPEN, "openAccount", owner="c", currency="EUR", commandId="o")
    usd_again = await mutate(wiring, OPEN, "openAccount", owner="c", currency="USD", commandId="o")

    assert first["transfer"]["id"] == again["transfer"]["id"]
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert (other["__typename"], other["originalCommandType"]) == (
        "IdempotencyKeyReused",
        "RequestTransfer",
    )
    assert usd["__typename"] == "AccountPayload"
    assert (usd_again["__typename"], usd_again["originalCommandType"]) == (
        "IdempotencyKeyReused",
        "OpenAccount",
    )


def test_a_balance_beyond_int64_in_a_stored_rejection_reads_back_exactly() -> None:
    """A refund may pass the maximum balance: the rejection's stored detail is a digit string."""
    balance = 2**70 + 5
    error = BalanceNotZero("acc-" + "0" * 32, str(balance), "EUR")
    mapped = error_from_domain(error)
    assert isinstance(mapped, BalanceNotZeroType)
    assert mapped.balance == format_amount(balance)
