"""Abrupt disconnects leave nothing behind; subscribers that never read stay bounded."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from application.ids import new_account_id
from domain.accounts import Deposit, OpenAccount
from store.protocol import NewEvent
from tests.live.helpers import eventually
from tests.wiring import Served, serve

ACCOUNT_CHANGED = "subscription ($id: ID!) { accountChanged(id: $id) { id balance version } }"
LEDGER_CHANGED = "subscription { ledgerChanged { currency openAccounts totalBalance position } }"
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
DATA = {"graphql-transport-ws": "next", "graphql-ws": "data"}


async def _receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (keep-alives skipped)."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return dict(message)
        assert message["type"] in {"ka", "ping", "pong"}, message


async def subscribe_raw(
    url: str,
    protocol: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    rcvbuf: int | None = None,
) -> ClientConnection:
    """Open a connection, subscribe with ``query`` and wait for the first update.

    ``rcvbuf`` shrinks the client's socket receive buffer, so that a client
    that stops reading pushes back on the server quickly.
    """
    sock = None
    if rcvbuf is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    # No compression: a client that stops reading should fill the buffers soon.
    ws = await connect(url, subprotocols=[protocol], sock=sock, max_queue=1, compression=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await _receive(ws, "connection_ack")
    payload = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": "1", "type": START[protocol], "payload": payload}))
    await _receive(ws, DATA[protocol])
    return ws


def drop(ws: ClientConnection) -> None:
    """Vanish without a close handshake, as a crashed client or a cut cable would."""
    ws.transport.abort()


async def test_200_abruptly_dropped_connections_leave_no_task_or_subscriber(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
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
                return await subscribe_raw(
                    served.url, protocol, ACCOUNT_CHANGED, {"id": account_id}
                )

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
        gc.collect()  # "Task exception was never retrieved" is logged when a task is collected
    # A client that vanishes is not a server error (schema/app.py logs it at debug).
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [f"{r.name}: {r.getMessage()}" for r in errors]


async def test_a_subscriber_that_never_reads_keeps_server_memory_bounded() -> None:
    """Backpressure reaches the hub, which keeps one update; reading later gives the latest.

    ledgerChanged messages carry every currency (~25 kB here), so a few hundred
    of them fill the socket buffers and the server's sends block. The ledger
    projector handles the deposits of each 20 ms as one batch (one message),
    so the deposits are spread out for the messages to add up.
    """
    async with serve() as served:
        accounts = [(new_account_id(), _currency(i)) for i in range(200)]
        for account_id, currency in accounts:
            await served.service.handle(OpenAccount(account_id, "fred", currency))
        idle = await subscribe_raw(served.url, "graphql-transport-ws", LEDGER_CHANGED, rcvbuf=1024)
        deposits = 0
        async with asyncio.timeout(60):
            while served.hub.dropped < 20 and deposits < 20_000:
                await served.service.handle(Deposit(accounts[0][0], 1))
                deposits += 1
                assert served.hub.pending_count() <= served.hub.subscriber_count() <= 1
                await asyncio.sleep(0.002)
        assert served.hub.dropped >= 20, "the socket never pushed back"
        expected = f"{deposits / 100:.2f}"
        async with asyncio.timeout(30):
            while _balance_of(await _receive(idle, "next"), accounts[0][1]) != expected:
                pass
        drop(idle)
        await eventually(lambda: served.hub.subscriber_count() == 0)


def _currency(i: int) -> str:
    return "Q" + chr(ord("A") + i // 26) + chr(ord("A") + i % 26)


def _balance_of(message: dict[str, Any], currency: str) -> str:
    totals = message["payload"]["data"]["ledgerChanged"]
    return next(str(t["totalBalance"]) for t in totals if t["currency"] == currency)


async def test_an_events_subscriber_that_stops_reading_is_ended_with_where_to_resume() -> None:
    """Real backpressure on a strict stream: the hub queue fills, the stream ends with an
    error naming the last position sent, and nothing is held for the client after that."""
    async with serve(queue_size=20) as served:
        query = "subscription ($after: Int) { events(after: $after) { position data } }"
        await append_big(served, 1)
        idle = await subscribe_raw(
            served.url, "graphql-transport-ws", query, {"after": 0}, rcvbuf=1024
        )
        async with asyncio.timeout(60):
            while served.hub.overflows == 0:
                await append_big(served, 10)
        assert served.hub.subscriber_count() == 0  # detached at once: nothing queued for it
        received, errors = [1], None
        async with asyncio.timeout(30):
            while errors is None:
                payload = (await _receive(idle, "next"))["payload"]
                errors = payload.get("errors")
                if errors is None:
                    received.append(payload["data"]["events"]["position"])
        extensions = errors[0]["extensions"]
        assert extensions["code"] == "SUBSCRIBER_TOO_SLOW"
        assert extensions["resumeAfter"] == received[-1]
        assert received == list(range(1, received[-1] + 1))
        assert (await _receive(idle, "complete"))["id"] == "1"
        drop(idle)


async def append_big(served: Served, commits: int) -> None:
    """Commits with ~16 kB of data each: a few hundred fill a stalled socket."""
    for _ in range(commits):
        version = await served.store.stream_version("account-big")
        event = NewEvent(f"big-{version + 1}", "Ticked", {"blob": "x" * 16_000})
        await served.store.append("account-big", "account", version, [event])
