"""runtime/websocket_edge.py: uvicorn's WebSocket protocol holding less per idle connection.

The inbox and the writable flag stand in for ``asyncio.Queue`` and
``asyncio.Event`` in uvicorn's protocol: their semantics are tested here,
and uvicorn's use of the attributes they replace is pinned against its
source. What an idle subscriber's protocol keeps on a real server is in
``test_idle_connections.py``. The live suites run with
``WEBSOCKET_PROTOCOL=uvicorn`` too (``make test-plain-engine``).
"""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from runtime.websocket_edge import Inbox, LeanWebSocketProtocol, WritableFlag, websocket_protocol

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
