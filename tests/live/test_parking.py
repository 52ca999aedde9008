"""Parked read-model subscriptions (``schema._engine.parking``), through a served app.

With the tuned engine an idle ``graphql-transport-ws`` read-model subscriber
keeps no task and no strawberry operation; everything a client sees must be
what a subscription that keeps them sends: each change, the ``extensions``,
errors coded as before, ``complete`` when the server ends it, the
per-connection limit and duplicate ids. The plain engine and the legacy
protocol never park.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from application.ids import new_account_id
from domain.accounts import Deposit, OpenAccount
from schema.limits import Engine, Limits
from tests.live.helpers import eventually
from tests.live.test_cleanup import ACCOUNT_CHANGED, DATA, START, _receive
from tests.wiring import Served, serve

WITH_STATEMENT = (
    "subscription ($id: ID!, $after: String) { accountChanged(id: $id) "
    "{ id version statement(first: 1, after: $after) { edges { node { amount } } } } }"
)
OPERATION_TASKS = ("run_operation", "handle_async_results")


def operation_tasks() -> list[str]:
    """The operation tasks running now (``run_operation``; legacy: ``handle_async_results``)."""
    return [
        name
        for task in asyncio.all_tasks()
        if (name := task.get_coro().__qualname__).endswith(OPERATION_TASKS)  # type: ignore[union-attr]
    ]


@contextlib.asynccontextmanager
async def connected(
    served: Served, protocol: str = "graphql-transport-ws"
) -> AsyncIterator[ClientConnection]:
    async with connect(served.url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await _receive(ws, "connection_ack")
        yield ws


async def subscribe(
    ws: ClientConnection,
    op_id: str,
    variables: dict[str, Any],
    *,
    query: str = ACCOUNT_CHANGED,
    protocol: str = "graphql-transport-ws",
) -> None:
    payload = {"query": query, "variables": variables}
    await ws.send(json.dumps({"id": op_id, "type": START[protocol], "payload": payload}))


async def parked(ws: ClientConnection, op_id: str, account_id: str) -> dict[str, Any]:
    """Subscribe to ``account_id``'s changes; the first ``next``, once the subscription parked."""
    await subscribe(ws, op_id, {"id": account_id})
    first = await _receive(ws, "next")
    await eventually(lambda: operation_tasks() == [])
    return first


async def opened(served: Served) -> str:
    account_id = new_account_id()
    await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
    return account_id


@pytest.mark.parametrize("engine", ["tuned", "plain"])
async def test_an_idle_subscriber_keeps_no_operation_task_and_still_gets_each_change(
    engine: Engine,
) -> None:
    async with serve(limits=Limits(graphql_engine=engine)) as served:
        account_id = await opened(served)
        async with connected(served) as ws:
            await subscribe(ws, "1", {"id": account_id})
            first = await _receive(ws, "next")
            assert first["payload"]["data"]["accountChanged"]["version"] == 1
            if engine == "tuned":
                await eventually(lambda: operation_tasks() == [])
            else:  # the switch: strawberry's operation keeps its task
                assert len(operation_tasks()) == 1
            for version in (2, 3):
                await served.service.handle(Deposit(account_id, 5))
                update = await _receive(ws, "next")
                assert update["id"] == "1"
                assert update["payload"]["data"]["accountChanged"]["version"] == version
                # the operation's extensions, as in every result
                assert update["payload"]["extensions"] == first["payload"]["extensions"]
            assert served.hub.subscriber_count() == 1
            if engine == "tuned":
                assert operation_tasks() == []
        await eventually(lambda: served.hub.subscriber_count() == 0)


async def test_the_legacy_protocol_keeps_its_operation() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = await opened(served)
        async with connected(served, "graphql-ws") as ws:
            await subscribe(ws, "1", {"id": account_id}, protocol="graphql-ws")
            await _receive(ws, DATA["graphql-ws"])
            await asyncio.sleep(0.1)
            assert len(operation_tasks()) == 1
            await served.service.handle(Deposit(account_id, 5))
            update = await _receive(ws, DATA["graphql-ws"])
            assert update["payload"]["data"]["accountChanged"]["version"] == 2


async def test_subscribers_sharing_a_result_all_get_it_and_one_of_their_own_too() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = await opened(served)
        async with connected(served) as a, connected(served) as b:
            variables = {"id": account_id}
            await subscribe(a, "1", variables)
            await subscribe(b, "x", variables)
            await subscribe(b, "y", {"id": account_id, "after": None}, query=WITH_STATEMENT)
            firsts = [await _receive(a, "next"), *[await _receive(b, "next") for _ in "xy"]]
            assert {m["id"] for m in firsts} == {"1", "x", "y"}
            await eventually(lambda: operation_tasks() == [])
            await served.service.handle(Deposit(account_id, 7))
            got_a = await _receive(a, "next")
            got_b = {m["id"]: m for m in [await _receive(b, "next"), await _receive(b, "next")]}
            assert got_a["payload"] == got_b["x"]["payload"]
            assert got_a["payload"]["data"]["accountChanged"]["version"] == 2
            # a selection with an async field of its own, executed for its own key
            account = got_b["y"]["payload"]["data"]["accountChanged"]
            assert account["version"] == 2
            assert account["statement"]["edges"][0]["node"]["amount"] == "0.07"


async def test_a_subscriber_to_an_absent_account_is_parked_and_gets_it_once_opened() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = new_account_id()
        async with connected(served) as ws:
            await subscribe(ws, "1", {"id": account_id})
            await eventually(lambda: served.hub.subscriber_count() == 1)
            await eventually(lambda: operation_tasks() == [])
            # no result yet: the first push runs strawberry's operation for it
            await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
            opened_ = await _receive(ws, "next")
            assert opened_["payload"]["data"]["accountChanged"]["version"] == 1
            assert opened_["payload"]["extensions"]["cost"]["requested"] > 0
            await served.service.handle(Deposit(account_id, 5))
            deposited = await _receive(ws, "next")
            assert deposited["payload"]["data"]["accountChanged"]["version"] == 2
            assert deposited["payload"]["extensions"] == opened_["payload"]["extensions"]


async def test_a_pushed_result_with_errors_is_sent_as_a_running_subscription_sends_it() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = await opened(served)
        async with connected(served) as ws:
            variables = {"id": account_id, "after": "not-a-cursor"}
            await subscribe(ws, "1", variables, query=WITH_STATEMENT)
            first = await _receive(ws, "next")
            [error] = first["payload"]["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            await eventually(lambda: operation_tasks() == [])
            await served.service.handle(Deposit(account_id, 5))
            pushed = await _receive(ws, "next")
            assert pushed["payload"] == first["payload"]
            await eventually(lambda: operation_tasks() == [])  # and parked again


async def test_complete_ends_a_parked_subscription_and_frees_its_id() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = await opened(served)
        async with connected(served) as ws:
            await parked(ws, "1", account_id)
            await ws.send(json.dumps({"id": "1", "type": "complete"}))
            await eventually(lambda: served.hub.subscriber_count() == 0)
            await subscribe(ws, "1", {"id": account_id})  # the id is free again
            again = await _receive(ws, "next")
            assert again["id"] == "1"
            assert served.hub.subscriber_count() == 1


async def test_parked_subscriptions_count_against_the_connection_and_keep_their_ids() -> None:
    limits = Limits(graphql_engine="tuned", max_subscriptions_per_connection=2)
    async with serve(limits=limits) as served:
        account_id = await opened(served)
        async with connected(served) as ws:
            for op_id in ("1", "2"):
                await parked(ws, op_id, account_id)
            await subscribe(ws, "3", {"id": account_id})
            refused = await _receive(ws, "error")
            assert refused["id"] == "3"
            assert "limit" in refused["payload"][0]["message"]
            await subscribe(ws, "1", {"id": account_id})
            await ws.wait_closed()
            assert ws.close_code == 4409
        await eventually(lambda: served.hub.subscriber_count() == 0)


async def test_a_parked_subscription_completes_when_the_server_stops_serving_it() -> None:
    async with serve(limits=Limits(graphql_engine="tuned")) as served:
        account_id = await opened(served)
        async with connected(served) as ws:
            await parked(ws, "1", account_id)
            await served.live.stop()
            done = await _receive(ws, "complete")
            assert done == {"id": "1", "type": "complete"}
