"""Shared GraphQL documents and small steps for the schema tests."""

from __future__ import annotations

from typing import Any

from schema.auth import DEV_USER, User
from tests.wiring import Wiring

ERRORS = """
  __typename
  ... on Error { message }
  ... on InvalidInput { field }
"""
PAYLOAD = ERRORS + "... on AccountPayload { accountId version position duplicate }"
OPEN = "mutation($i: OpenAccountInput!) { openAccount(input: $i) {" + PAYLOAD + "} }"
DEPOSIT = "mutation($i: AmountInput!) { deposit(input: $i) {" + PAYLOAD + "} }"
WITHDRAW = "mutation($i: AmountInput!) { withdraw(input: $i) {" + PAYLOAD + "} }"
CLOSE = "mutation($i: CloseAccountInput!) { closeAccount(input: $i) {" + PAYLOAD + "} }"
TRANSFER = (
    "mutation($i: RequestTransferInput!) { requestTransfer(input: $i) {"
    + ERRORS
    + "... on TransferPayload { version transfer { id status } } } }"
)
UNKNOWN_ACCOUNT = "acc-" + "0" * 32


async def mutate(w: Wiring, query: str, user: User = DEV_USER, **fields: Any) -> dict[str, Any]:
    data = await w.data(query, {"i": fields}, user=user)
    (result,) = data.values()
    assert isinstance(result, dict)
    return result


async def open_account(
    w: Wiring, owner: str = "alice", currency: str = "EUR", user: User = DEV_USER
) -> str:
    result = await mutate(w, OPEN, user, owner=owner, currency=currency)
    assert result["__typename"] == "AccountPayload", result
    return str(result["accountId"])


async def deposit(w: Wiring, account_id: str, amount: str, user: User = DEV_USER) -> int:
    result = await mutate(w, DEPOSIT, user, accountId=account_id, amount=amount)
    assert result["__typename"] == "AccountPayload", result
    return int(result["version"])
