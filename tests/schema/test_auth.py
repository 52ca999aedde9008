"""The authorization matrix: users A and B, an admin, an anonymous caller.

Token checking itself (expired, forged, both transports) is in test_http.py
and the e2e tests; here the caller is given directly, as ``schema.app`` sets it.
"""

from __future__ import annotations

from typing import Any

import pytest

from schema.auth import ANONYMOUS, DEV_USER, AuthSettings, User, user_from_token
from tests.schema.helpers import CLOSE, DEPOSIT, OPEN, TRANSFER, WITHDRAW, deposit, mutate
from tests.wiring import SECRET, Wiring, make_wiring, token

ALICE = User("alice")
BOB = User("bob")
ADMIN = User("root", frozenset({"admin"}))
JWT = AuthSettings(mode="jwt", jwt_secret=SECRET)


@pytest.fixture
async def jwt_wiring() -> Wiring:
    return await make_wiring(auth=JWT)


async def opened(w: Wiring, user: User, owner: str) -> str:
    result = await mutate(w, OPEN, user, owner=owner, currency="EUR")
    assert result["__typename"] == "AccountPayload", result
    return str(result["accountId"])


async def typename(w: Wiring, query: str, user: User, **fields: Any) -> str:
    return str((await mutate(w, query, user, **fields))["__typename"])


async def test_users_open_accounts_only_for_themselves(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    await opened(w, ALICE, "alice")
    assert await typename(w, OPEN, ALICE, owner="bob", currency="EUR") == "Forbidden"
    assert await typename(w, OPEN, ANONYMOUS, owner="alice", currency="EUR") == "Forbidden"
    await opened(w, ADMIN, "bob")
    assert await w.event_count() == 2


async def test_users_change_only_their_own_accounts(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    alices = await opened(w, ALICE, "alice")
    await deposit(w, alices, "10", ALICE)
    before = await w.event_count()
    for user in (BOB, ANONYMOUS):
        for query in (DEPOSIT, WITHDRAW):
            assert await typename(w, query, user, accountId=alices, amount="1") == "Forbidden"
        assert await typename(w, CLOSE, user, accountId=alices) == "Forbidden"
    assert await w.event_count() == before
    assert await typename(w, WITHDRAW, ADMIN, accountId=alices, amount="1") == "AccountPayload"


async def test_transfers_only_from_own_accounts(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    alices, bobs = await opened(w, ALICE, "alice"), await opened(w, BOB, "bob")
    await deposit(w, alices, "10", ALICE)
    args = {"fromAccountId": alices, "toAccountId": bobs, "amount": "1"}
    assert await typename(w, TRANSFER, BOB, **args) == "Forbidden"
    assert await typename(w, TRANSFER, ALICE, **args) == "TransferPayload"


async def test_queries_show_users_only_their_own(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    alices, bobs = await opened(w, ALICE, "alice"), await opened(w, BOB, "bob")
    await deposit(w, alices, "10", ALICE)
    transfer = await mutate(w, TRANSFER, ALICE, fromAccountId=alices, toAccountId=bobs, amount="1")
    transfer_id = transfer["transfer"]["id"]
    await w.project()
    account = "query($id: ID!) { account(id: $id) { id } }"
    assert (await w.data(account, {"id": alices}, user=ALICE))["account"] is not None
    assert (await w.data(account, {"id": alices}, user=BOB))["account"] is None
    assert (await w.data(account, {"id": alices}, user=ANONYMOUS))["account"] is None
    travel = "query($id: ID!) { account(id: $id, atVersion: 1) { id } }"
    assert (await w.data(travel, {"id": alices}, user=BOB))["account"] is None
    listing = "{ accounts { edges { node { owner } } } }"
    owners = [e["node"]["owner"] for e in (await w.data(listing, user=BOB))["accounts"]["edges"]]
    assert owners == ["bob"]
    everyone = (await w.data(listing, user=ADMIN))["accounts"]["edges"]
    assert sorted(e["node"]["owner"] for e in everyone) == ["alice", "bob"]
    other = await w.run('{ accounts(owner: "alice") { edges { cursor } } }', user=BOB)
    assert other.errors
    assert other.errors[0].extensions == {"code": "FORBIDDEN"}
    one = "query($id: ID!) { transfer(id: $id) { id } }"
    for user in (ALICE, BOB, ADMIN):  # from alice, to bob: both sides see it
        assert (await w.data(one, {"id": transfer_id}, user=user))["transfer"] is not None
    stranger = User("carol")
    assert (await w.data(one, {"id": transfer_id}, user=stranger))["transfer"] is None
    listed = "query($a: ID) { transfers(accountId: $a) { edges { cursor } } }"
    refused = await w.run(listed, {"a": alices}, user=BOB)
    assert refused.errors
    assert refused.errors[0].extensions == {"code": "FORBIDDEN"}
    unfiltered = await w.run(listed, {"a": None}, user=BOB)  # all transfers: admins only
    assert unfiltered.errors
    assert unfiltered.errors[0].extensions == {"code": "FORBIDDEN"}


@pytest.mark.parametrize(
    "query",
    ["{ events { edges { cursor } } }", "{ projections { name } }"],
)
async def test_admin_only_queries(jwt_wiring: Wiring, query: str) -> None:
    for user in (ALICE, ANONYMOUS):
        result = await jwt_wiring.run(query, user=user)
        assert result.errors
        assert result.errors[0].extensions == {"code": "FORBIDDEN"}
    assert (await jwt_wiring.run(query, user=ADMIN)).errors is None


async def test_history_of_others_is_admin_only(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    alices = await opened(w, ALICE, "alice")
    query = "query($id: ID!) { accountHistory(id: $id) { event { type } } }"
    assert len((await w.data(query, {"id": alices}, user=ALICE))["accountHistory"]) == 1
    assert len((await w.data(query, {"id": alices}, user=ADMIN))["accountHistory"]) == 1
    refused = await w.run(query, {"id": alices}, user=BOB)
    assert refused.errors
    assert refused.errors[0].extensions == {"code": "FORBIDDEN"}


async def test_ledger_needs_a_signed_in_user(jwt_wiring: Wiring) -> None:
    assert (await jwt_wiring.run("{ ledger { currency } }", user=ALICE)).errors is None
    refused = await jwt_wiring.run("{ ledger { currency } }", user=ANONYMOUS)
    assert refused.errors


async def test_command_ids_are_namespaced_per_user(jwt_wiring: Wiring) -> None:
    w = jwt_wiring
    first = await mutate(w, OPEN, ALICE, owner="alice", currency="EUR", commandId="k1")
    other = await mutate(w, OPEN, BOB, owner="bob", currency="EUR", commandId="k1")
    assert other["__typename"] == "AccountPayload"
    assert other["accountId"] != first["accountId"]
    assert other["duplicate"] is False


async def test_no_two_users_and_keys_share_a_command_id(jwt_wiring: Wiring) -> None:
    """``carl:k`` + ``open`` and ``carl`` + ``k:open`` once both read ``carl:k:open``."""
    w = jwt_wiring
    colon, carl = User("carl:k"), User("carl")
    first = await mutate(w, OPEN, colon, owner="carl:k", currency="EUR", commandId="open")
    second = await mutate(w, OPEN, carl, owner="carl", currency="EUR", commandId="k:open")
    admin = await mutate(w, OPEN, ADMIN, owner="carl", currency="EUR", commandId="carl:k:open")
    assert [r["__typename"] for r in (first, second, admin)] == ["AccountPayload"] * 3
    assert len({r["accountId"] for r in (first, second, admin)}) == 3
    assert not any(r["duplicate"] for r in (first, second, admin))


def test_dev_user_is_admin() -> None:
    assert DEV_USER.is_admin
    assert DEV_USER.owns("anyone")


def test_tokens_are_verified() -> None:
    user = user_from_token(JWT, token("alice", ["admin"]))
    assert (user.name, user.is_admin) == ("alice", True)
    from schema.auth import AuthError

    for bad in (
        token("alice", ttl=-60),
        token("alice", secret="another-secret-that-is-long-enough-0123456789"),
        token("alice")[:-2] + "xx",
        "not.a.jwt",
        "",
    ):
        with pytest.raises(AuthError):
            user_from_token(JWT, bad)
