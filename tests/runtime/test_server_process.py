"""``python server.py`` as a real process: endpoints, a graceful stop, the database stopped last."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from websockets.typing import Subprotocol

from runtime.embedded import free_port
from tests.runtime.processes import ROOT, ServerProcess, clean_env, running_server

pytestmark = pytest.mark.e2e

OPEN = 'mutation { openAccount(input: {owner: "olga", currency: "EUR"}) { __typename ... on AccountPayload { account { id } version } } }'  # noqa: E501


def _graphql(server: ServerProcess, query: str, **headers: str) -> Any:
    response = httpx.post(server.url + "/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_ready(server: ServerProcess, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = httpx.get(server.url + "/readyz")
        body = response.json()
        if response.status_code == 200:
            return body
        time.sleep(0.2)
    raise AssertionError(f"never ready: {body}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _status(pid)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


async def _subscribe_then_wait_for_close(url: str, started: asyncio.Event) -> int | None:
    """Subscribe to events over graphql-transport-ws; return the close code the server sends."""
    async with websockets.connect(
        url.replace("http", "ws") + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription { events(after: 0) { position type } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        assert json.loads(await ws.recv())["type"] == "next"
        started.set()
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


def _exercise_endpoints(server: ServerProcess) -> str:
    """Health, readiness, GraphiQL, one mutation, metrics, request ids; returns the account id."""
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    checks = _wait_ready(server)["checks"]
    assert isinstance(checks, dict)
    assert {"database", "sequencer", "consumer:accounts"} <= set(checks)
    page = httpx.get(server.url + "/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    opened = _graphql(server, OPEN)["data"]["openAccount"]
    assert opened["version"] == 1
    metrics = httpx.get(server.url + "/metrics").text
    assert 'ledger_commands_total{outcome="ok",type="OpenAccount"} 1.0' in metrics
    assert "ledger_graphql_operations_total" in metrics
    assert "ledger_consumer_lag_events" in metrics
    echoed = httpx.get(server.url + "/healthz", headers={"x-request-id": "abc-1"})
    assert echoed.headers["x-request-id"] == "abc-1"
    return str(opened["account"]["id"])


async def test_serves_stops_gracefully_and_keeps_data(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        account = await asyncio.to_thread(_exercise_endpoints, server)
        nx_pid = int((tmp_path / "data" / "nx-27017.pid").read_text())
        started = asyncio.Event()
        watcher = asyncio.create_task(_subscribe_then_wait_for_close(server.url, started))
        await asyncio.wait_for(started.wait(), 20)
        async with httpx.AsyncClient() as client:
            assert "ledger_subscriptions 1.0" in (await client.get(server.url + "/metrics")).text
        code = await asyncio.to_thread(server.stop)
        close_code = await asyncio.wait_for(watcher, 20)

    assert code == 0, server.log()
    assert close_code in (1001, 1012)
    assert not _alive(nx_pid)
    log = server.log()
    assert log.index("shutting down") < log.index("embedded database stopped")
    assert "Traceback" not in log

    with running_server(tmp_path) as server:  # the same DATA_DIR: the data is still there
        query = f'{{ account(id: "{account}") {{ owner version }} }}'
        found = await asyncio.to_thread(_graphql, server, query)
    assert found["data"] == {"account": {"owner": "olga", "version": 1}}


def test_sigterm_ends_within_the_shutdown_bound_when_the_database_hangs(tmp_path: Path) -> None:
    """The embedded database frozen (SIGSTOP): the stop still ends within the bound."""
    limit = 3.0
    with running_server(tmp_path, {"SHUTDOWN_TIMEOUT_SECONDS": str(limit)}) as server:
        nx_pid = int((tmp_path / "data" / "nx-27017.pid").read_text())
        try:
            os.kill(nx_pid, signal.SIGSTOP)
            started = time.monotonic()
            code = server.stop(timeout=limit + 30)
            took = time.monotonic() - started
        finally:
            if _alive(nx_pid):
                os.kill(nx_pid, signal.SIGCONT)
                os.kill(nx_pid, signal.SIGKILL)
    # Either the stop finished in time (the database's 2 s grace, then SIGKILL) or the
    # watchdog ended it at the bound with status 1; never a hang.
    assert code in (0, 1), server.log()
    assert (code == 1) == ("stopping took longer than 3.0s" in server.log()), server.log()
    assert took < limit + 15, took  # the bound, plus the last-resort kill and slack
    assert not _alive(nx_pid)


async def test_the_embedded_database_is_started_again_when_it_dies(tmp_path: Path) -> None:
    """Development: a killed embedded database is started again on its URL; the gap is logged."""
    with running_server(tmp_path) as server:
        pid_file = tmp_path / "data" / "nx-27017.pid"
        first = int(pid_file.read_text())
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "the embedded database is back" not in server.log():
            assert time.monotonic() < deadline, server.log()
            await asyncio.sleep(0.1)
        assert int(pid_file.read_text()) != first
        opened = await asyncio.to_thread(_graphql, server, OPEN)
    assert opened["data"]["openAccount"]["__typename"] == "AccountPayload"
    log = server.log()
    assert "the embedded database exited" in log
    assert log.index("the embedded database exited") < log.index("is back after")


def test_production_without_database_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="APP_ENV=production needs MONGODB_URL"):  # noqa: SIM117
        with running_server(tmp_path, {"APP_ENV": "production"}):
            pass


def test_an_unreachable_database_ends_start_up_with_one_clear_line(tmp_path: Path) -> None:
    """A wrong MONGODB_URL: one line naming the host (no password), the time waited, exit 1."""
    with socket.socket() as closed:  # a loopback port that nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"mongodb://olga:hunter2@127.0.0.1:{port}/?authSource=admin"
    env = clean_env(MONGODB_URL=url, MONGODB_CONNECT_TIMEOUT_SECONDS="1", PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, str(ROOT / "server.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1
    assert output.count("\n") == 0, output
    assert f"cannot reach MongoDB at 127.0.0.1:{port} after waiting 1." in output
    assert "hunter2" not in output
    assert "Traceback" not in output


def test_no_secret_or_token_reaches_the_log(tmp_path: Path) -> None:
    secret = "jwt-secret-" + "k" * 40
    token = jwt.encode({"sub": "olga", "roles": ["admin"], "exp": int(time.time()) + 600}, secret)
    forged = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 600}, "x" * 40)
    env = {"AUTH_MODE": "jwt", "JWT_SECRET": secret, "STORE": "memory", "LOG_LEVEL": "DEBUG"}
    with running_server(tmp_path, env) as server:
        assert "errors" not in _graphql(server, OPEN, authorization=f"Bearer {token}")
        query = {"query": "{ accounts { edges { cursor } } }"}
        headers = {"authorization": f"Bearer {forged}"}
        refused = httpx.post(server.url + "/graphql", json=query, headers=headers)
        assert refused.status_code == 401
        httpx.get(server.url + f"/graphql?token={token}&query=%7B__typename%7D")
        httpx.get(server.url + "/healthz", headers={"authorization": f"Bearer {token}"})
    log = server.log()
    assert "/graphql?token=[REDACTED]" in log
    for leaked in (secret, token, forged, token.split(".")[2]):
        assert leaked not in log
