"""Abrupt disconnects leave nothing behind; subscribers that never read stay bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from application.ids import new_account_id
from domain.account_messages import Deposit, OpenAccount
from tests.live.harness import serve
from tests.live.helpers import eventually

ACCOUNT_CHANGED = "subscription ($id: ID!) { accountChanged(id: $id) { id balance version } }"
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
DATA = {"graphql-transport-ws": "next", "graphql-ws": "data"}


async def _receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (keep-alives skipped)."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return dict(message)
        assert message["type"] in {"ka", "ping", "pong"}, message


async def subscribe_raw(url: str, protocol: str, account_id: str) -> ClientConnection:
    """Open a connection, subscribe to accountChanged and wait for the first update."""
    ws = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await _receive(ws, "connection_ack")
    payload = {"query": ACCOUNT_CHANGED, "variables": {"id": account_id}}
    await ws.send(json.dumps({"id": "1", "type": START[protocol], "payload": payload}))
    await _receive(ws, DATA[protocol])
    return ws


def drop(ws: ClientConnection) -> None:
    """Vanish without a close handshake, as a crashed client or a cut cable would."""
    ws.transport.abort()


async def test_200_abruptly_dropped_connections_leave_no_task_or_subscriber() -> None:
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "erin", "EUR"))
        await asyncio.sleep(0.1)  # let start-up tasks settle before the baseline
        baseline_tasks = len(asyncio.all_tasks())
        assert served.hub.subscriber_count() == 0
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> ClientConnection:
            protocol = "graphql-transport-ws" if i % 2 else "graphql-ws"
            async with gate:
                return await subscribe_raw(served.url, protocol, account_id)

        async with asyncio.timeout(60):
            sockets = await asyncio.gather(*(one(i) for i in range(200)))
        assert served.hub.subscriber_count() == 200
        await served.service.handle(Deposit(account_id, 100))  # traffic while they vanish
        for ws in sockets:
            drop(ws)
        await eventually(lambda: served.hub.subscriber_count() == 0, within=30)
        await eventually(lambda: len(asyncio.all_tasks()) <= baseline_tasks, within=30)
        assert served.hub.topic_count() == 0
        assert served.live.read_models.pending_topics == 0


async def test_a_subscriber_that_never_reads_keeps_server_memory_bounded() -> None:
    async with serve() as served:
        account_id = new_account_id()
        await served.service.handle(OpenAccount(account_id, "fred", "EUR"))
        idle = await subscribe_raw(served.url, "graphql-transport-ws", account_id)
        for _ in range(300):
            await served.service.handle(Deposit(account_id, 1))
            # Latest-only: whatever the socket has not taken, at most one update waits.
            assert served.hub.pending_count() <= served.hub.subscriber_count() <= 1
        drop(idle)
        await eventually(lambda: served.hub.subscriber_count() == 0)
