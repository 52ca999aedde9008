"""What an idle, initialised WebSocket connection keeps.

Both protocols time out a connection that sends no ``connection_init``; once
it has arrived the timer has nothing left to do, and with thousands of idle
subscribers a task kept per connection (sleeping, or finished with its
``CancelledError``) is memory that buys nothing. Nor does the server's
message loop keep the last message it handled (the ``subscribe``) while it
waits for the next one.
"""

from __future__ import annotations

import asyncio
import gc
import json
import types

import pytest
from websockets.asyncio.client import connect

from application.ids import new_account_id
from domain.accounts import OpenAccount
from tests.live.helpers import eventually
from tests.live.test_cleanup import ACCOUNT_CHANGED, _receive, subscribe_raw
from tests.wiring import serve

INIT_TIMEOUTS = {
    "graphql-transport-ws": "BaseGraphQLTransportWSHandler.handle_connection_init_timeout",
    "graphql-ws": "LegacyWSHandler._close_without_init",
}
SERVER_MODULES = ("strawberry.", "schema.", "projections.", "runtime.")
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
DATA = {"graphql-transport-ws": "next", "graphql-ws": "data"}


def init_timeout_tasks(protocol: str) -> list[asyncio.Task[object]]:
    """Every init-timeout task of ``protocol`` still referenced, finished or not."""
    gc.collect()
    name = INIT_TIMEOUTS[protocol]
    # type(), not isinstance(): the heap may hold weak proxies to dead objects
    return [
        task
        for task in gc.get_objects()
        if type(task) is asyncio.Task and task.get_coro().__qualname__ == name  # type: ignore[union-attr]
    ]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_an_initialised_subscriber_keeps_no_init_timeout_task(protocol: str) -> None:
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
        async with connect(served.url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            # Before connection_init the timer runs: the check below can see it.
            await eventually(lambda: len(init_timeout_tasks(protocol)) == 1)
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            await _receive(ws, "connection_ack")
            payload = {"query": ACCOUNT_CHANGED, "variables": {"id": account_id}}
            await ws.send(json.dumps({"id": "1", "type": START[protocol], "payload": payload}))
            first = await _receive(ws, DATA[protocol])
            assert first["payload"]["data"]["accountChanged"]["id"] == account_id
            await eventually(lambda: init_timeout_tasks(protocol) == [])
            assert served.hub.subscriber_count() == 1
        await eventually(lambda: served.hub.subscriber_count() == 0)


def frames_holding_the_subscribe_message() -> list[str]:
    """Server coroutines and async generators whose locals hold a ``subscribe`` message.

    The message either decoded (a dict) or as the text received. The test
    client's own frames (websockets, this module) are not the server's.
    """
    gc.collect()
    found = []
    for thing in gc.get_objects():
        # type(), not isinstance(): the heap may hold weak proxies to dead objects
        if type(thing) is types.CoroutineType:
            frame = thing.cr_frame
        elif type(thing) is types.AsyncGeneratorType:
            frame = thing.ag_frame
        else:
            continue
        if frame is None or not str(frame.f_globals.get("__name__")).startswith(SERVER_MODULES):
            continue
        for value in frame.f_locals.values():
            if (isinstance(value, dict) and value.get("type") == "subscribe") or (
                isinstance(value, str) and '"subscribe"' in value
            ):
                found.append(frame.f_code.co_qualname)
    return found


async def test_an_idle_subscriber_connection_keeps_no_subscribe_message() -> None:
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
        ws = await subscribe_raw(
            served.url, "graphql-transport-ws", ACCOUNT_CHANGED, {"id": account_id}
        )
        try:
            assert served.hub.subscriber_count() == 1
            assert frames_holding_the_subscribe_message() == []
        finally:
            await ws.close()
