"""What an idle, initialised WebSocket connection keeps.

Both protocols time out a connection that sends no ``connection_init``; once
it has arrived the timer has nothing left to do, and with thousands of idle
subscribers a task kept per connection (sleeping, or finished with its
``CancelledError``) is memory that buys nothing. Nor does the server's
message loop keep the last message it handled (the ``subscribe``) while it
waits for the next one, nor uvicorn's protocol the handshake and an empty
queue (``runtime/websocket_edge.py``; with ``WEBSOCKET_PROTOCOL=uvicorn`` the
test checks that uvicorn's own class still keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import types
from collections.abc import AsyncIterator

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import ClientConnection, connect
from websockets.http11 import Request

from application.ids import new_account_id
from domain.accounts import Deposit, OpenAccount
from runtime.websocket_edge import Inbox, LeanWebSocketProtocol, WritableFlag
from tests.live.helpers import eventually
from tests.live.test_cleanup import ACCOUNT_CHANGED, _receive, subscribe_raw
from tests.wiring import Served, memory_settings, serve

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


@contextlib.asynccontextmanager
async def an_idle_subscriber() -> AsyncIterator[tuple[Served, str, ClientConnection]]:
    """A served app with one account and one ``accountChanged`` subscriber on it."""
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
        ws = await subscribe_raw(
            served.url, "graphql-transport-ws", ACCOUNT_CHANGED, {"id": account_id}
        )
        try:
            yield served, account_id, ws
        finally:
            await ws.close()


async def test_an_idle_subscriber_connection_keeps_no_subscribe_message() -> None:
    async with an_idle_subscriber() as (served, _, _ws):
        assert served.hub.subscriber_count() == 1
        assert frames_holding_the_subscribe_message() == []


# -- uvicorn's protocol ------------------------------------------------------------------


def connection_protocols() -> list[WebSocketsSansIOProtocol]:
    gc.collect()
    # type(), not isinstance(): the heap may hold weak proxies to dead objects
    kinds = (LeanWebSocketProtocol, WebSocketsSansIOProtocol)
    return [p for p in gc.get_objects() if type(p) in kinds]


def server_handshake_requests() -> list[Request]:
    """The handshake requests in the heap but the test client's own."""
    gc.collect()
    return [
        r
        for r in gc.get_objects()
        if type(r) is Request
        and not any(type(holder) is ClientConnection for holder in gc.get_referrers(r))
    ]


def check_the_protocol_keeps_no_handshake_and_no_queue(lean: bool) -> None:
    [protocol] = connection_protocols()
    assert type(protocol) is (LeanWebSocketProtocol if lean else WebSocketsSansIOProtocol)
    if not lean:  # what the lean protocol saves: uvicorn's keeps the whole handshake
        assert protocol.request is not None
        assert len(protocol.request.headers) > 0
        return
    handshake: tuple[object, object] = (protocol.request, protocol.response)
    assert handshake == (None, None)
    inbox: object = protocol.queue  # typed as uvicorn's asyncio.Queue
    assert isinstance(inbox, Inbox)
    assert inbox._items is None
    assert inbox._waiter is not None  # the app is waiting for a message
    flag: object = protocol.writable
    assert isinstance(flag, WritableFlag)
    assert flag.is_set()
    assert flag._waiters is None
    # websockets' parser still refers to the request: its headers are gone.
    assert [len(request.headers) for request in server_handshake_requests()] == [0]


async def test_an_idle_subscriber_connection_keeps_no_handshake_and_no_queue() -> None:
    lean = memory_settings().websocket_protocol == "lean"
    assert lean == (os.environ.get("WEBSOCKET_PROTOCOL", "lean") == "lean")
    async with an_idle_subscriber() as (served, account_id, ws):
        check_the_protocol_keeps_no_handshake_and_no_queue(lean)
        # The connection still works both ways without them.
        await served.service.handle(Deposit(account_id, 5))
        update = await _receive(ws, "next")
        assert update["payload"]["data"]["accountChanged"]["version"] == 2
        await ws.close()
        # And the server lets the protocol go once the client left.
        await eventually(lambda: served.hub.subscriber_count() == 0)
        await eventually(lambda: connection_protocols() == [])
