"""runtime/websocket_edge.py: uvicorn's WebSocket protocol holding less per idle connection.

The inbox and the writable flag stand in for ``asyncio.Queue`` and
``asyncio.Event`` in uvicorn's protocol: their semantics are tested here,
uvicorn's use of the attributes they replace is pinned against its source,
and a real server shows what an idle subscriber's protocol keeps. The live
suites run with ``WEBSOCKET_PROTOCOL=uvicorn`` too (``make test-plain-engine``).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import re

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import ClientConnection
from websockets.http11 import Request

from application.ids import new_account_id
from domain.accounts import Deposit, OpenAccount
from runtime.websocket_edge import Inbox, LeanWebSocketProtocol, WritableFlag, websocket_protocol
from tests.live.helpers import eventually
from tests.live.test_cleanup import ACCOUNT_CHANGED, _receive, subscribe_raw
from tests.wiring import memory_settings, serve

# -- the inbox ---------------------------------------------------------------------------


async def test_the_inbox_hands_items_out_in_order_and_keeps_no_deque_when_drained() -> None:
    inbox: Inbox[int] = Inbox()
    assert inbox.empty()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()
    assert inbox._items is None


async def test_a_waiting_reader_gets_the_next_item() -> None:
    inbox: Inbox[str] = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("connect")
    assert await reader == "connect"
    assert inbox._waiter is None


async def test_an_item_put_while_the_reader_is_cancelled_stays_for_the_next_get() -> None:
    inbox: Inbox[str] = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("disconnect")  # the waiter is resolved ...
    reader.cancel()  # ... and the reader cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await asyncio.wait_for(inbox.get(), 1) == "disconnect"


async def test_the_inbox_allows_one_reader_at_a_time() -> None:
    inbox: Inbox[int] = Inbox()
    first = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already being awaited"):
        await inbox.get()
    inbox.put_nowait(7)
    assert await first == 7


# -- the writable flag -------------------------------------------------------------------


async def test_the_flag_starts_set_and_wait_returns_at_once() -> None:
    flag = WritableFlag()
    assert flag.is_set()
    assert await asyncio.wait_for(flag.wait(), 1) is True


async def test_cleared_the_flag_holds_every_writer_until_set() -> None:
    flag = WritableFlag()
    flag.clear()
    writers = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in writers)
    flag.set()
    assert await asyncio.gather(*writers) == [True, True, True]
    assert flag._waiters is None


async def test_a_cancelled_writer_leaves_no_waiter_behind() -> None:
    flag = WritableFlag()
    flag.clear()
    writer = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert flag._waiters is None
    flag.set()


# -- uvicorn's protocol, pinned ----------------------------------------------------------


def _uses(attribute: str) -> set[str]:
    source = inspect.getsource(WebSocketsSansIOProtocol)
    return set(re.findall(rf"self\.{attribute}\.(\w+)", source))


def _methods_reading(attribute: str) -> set[str]:
    return {
        name
        for name, member in vars(WebSocketsSansIOProtocol).items()
        if inspect.isfunction(member)
        and re.search(rf"self\.{attribute}\b", inspect.getsource(member))
    }


def test_uvicorn_uses_the_replaced_attributes_only_as_the_lean_protocol_provides() -> None:
    # A new uvicorn that calls anything else on these attributes, or reads the
    # handshake request and response outside the handshake, fails here first.
    assert _uses("queue") <= {"put_nowait", "get", "empty"}
    assert _uses("writable") <= {"set", "clear", "wait", "is_set"}
    assert _methods_reading("request") == {"handle_connect"}
    assert _methods_reading("response") == {"handle_connect", "send"}


def test_the_setting_picks_the_protocol() -> None:
    assert websocket_protocol("lean") is LeanWebSocketProtocol
    assert websocket_protocol("uvicorn") == "websockets-sansio"
    with pytest.raises(ValueError, match="unknown WebSocket protocol"):
        websocket_protocol("wsproto")


# -- a real server -----------------------------------------------------------------------


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


async def test_an_idle_subscriber_connection_keeps_no_handshake_and_no_queue() -> None:
    lean = memory_settings().websocket_protocol == "lean"
    assert lean == (os.environ.get("WEBSOCKET_PROTOCOL", "lean") == "lean")
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
        ws = await subscribe_raw(
            served.url, "graphql-transport-ws", ACCOUNT_CHANGED, {"id": account_id}
        )
        try:
            [protocol] = connection_protocols()
            assert type(protocol) is (LeanWebSocketProtocol if lean else WebSocketsSansIOProtocol)
            if lean:
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
            else:  # what the lean protocol saves: uvicorn's keeps the whole handshake
                assert protocol.request is not None
                assert len(protocol.request.headers) > 0
            del protocol  # the last check below is that the server lets it go
            # The connection still works both ways without them.
            await served.service.handle(Deposit(account_id, 5))
            update = await _receive(ws, "next")
            assert update["payload"]["data"]["accountChanged"]["version"] == 2
        finally:
            await ws.close()
        await eventually(lambda: served.hub.subscriber_count() == 0)
        await eventually(lambda: connection_protocols() == [])
