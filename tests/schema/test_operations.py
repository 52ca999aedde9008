"""``retryProjection``: an admin resumes a projection stopped on a failing event."""

from __future__ import annotations

from typing import Any

import pytest

from projections.checkpoints import CheckpointStore
from schema.auth import ANONYMOUS, AuthSettings, User
from tests.schema.helpers import deposit, open_account
from tests.wiring import SECRET, Wiring, make_wiring

RETRY = """
mutation($name: String!) {
  retryProjection(name: $name) {
    __typename
    ... on Error { message }
    ... on InvalidInput { field }
    ... on RetryProjectionPayload { projection { name checkpoint head state } }
  }
}
"""
ADMIN = User("root", frozenset({"admin"}))


async def retry(w: Wiring, name: str, user: User = ADMIN) -> dict[str, Any]:
    result: dict[str, Any] = (await w.data(RETRY, {"name": name}, user=user))["retryProjection"]
    return result


async def stop_on_error(w: Wiring, name: str) -> CheckpointStore:
    """Record ``name`` as stopped on a poison event, as its consumer would."""
    checkpoints = CheckpointStore(w.documents)
    await checkpoints.report(name, "stopped_on_error", "RuntimeError: boom", 2)
    assert not (await checkpoints.load(name)).retry_requested()
    return checkpoints


async def test_admin_requests_a_retry_and_sees_the_status(wiring: Wiring) -> None:
    await deposit(wiring, await open_account(wiring), "5.00")
    checkpoints = await stop_on_error(wiring, "ledger")
    result = await retry(wiring, "ledger")
    assert result["__typename"] == "RetryProjectionPayload", result
    assert result["projection"]["name"] == "ledger"
    assert result["projection"]["head"] == 2
    assert (await checkpoints.load("ledger")).retry_requested()


async def test_unknown_projection_is_invalid_input(wiring: Wiring) -> None:
    result = await retry(wiring, "nonsense")
    assert (result["__typename"], result["field"]) == ("InvalidInput", "name")
    assert "nonsense" in result["message"]
    assert not (await CheckpointStore(wiring.documents).load("nonsense")).retry_requested()


@pytest.mark.parametrize("user", [User("alice"), ANONYMOUS], ids=["user", "anonymous"])
async def test_only_admins_may_retry_in_jwt_mode(user: User) -> None:
    w = await make_wiring(auth=AuthSettings(mode="jwt", jwt_secret=SECRET))
    checkpoints = await stop_on_error(w, "accounts")
    refused = await retry(w, "accounts", user)
    assert refused["__typename"] == "Forbidden"
    assert "admin" in refused["message"]
    assert not (await checkpoints.load("accounts")).retry_requested()
    assert (await retry(w, "accounts", ADMIN))["__typename"] == "RetryProjectionPayload"
    assert (await checkpoints.load("accounts")).retry_requested()
