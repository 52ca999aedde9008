"""Two real server processes on one database: a change made on A reaches a subscriber on B."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from runtime.embedded import free_port
from tests.live.helpers import take

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OPEN = """
mutation ($owner: String!) {
  openAccount(input: {owner: $owner, currency: "EUR"}) { ... on AccountPayload { accountId } }
}
"""
DEPOSIT = """
mutation ($id: ID!, $amount: Decimal!) {
  deposit(input: {accountId: $id, amount: $amount}) { ... on AccountPayload { version } }
}
"""
ACCOUNT_CHANGED = "subscription ($id: ID!) { accountChanged(id: $id) { balance version } }"
EVENTS = "subscription ($after: Int) { events(after: $after) { position streamId type } }"


class ServerProcess:
    """``python server.py`` on a free loopback port; stopped (then killed) on exit."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.env = {**env, "PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "server.py"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def servers(mongo_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {
        **os.environ,
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": f"x_{uuid.uuid4().hex[:12]}",
        "HOST": "127.0.0.1",
        "AUTH_MODE": "dev",
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
    }
    pair = (ServerProcess(env, tmp_path / "a.log"), ServerProcess(env, tmp_path / "b.log"))
    try:
        for server in pair:
            server.start()
        for server in pair:
            server.wait_ready()
        yield pair
    finally:
        for server in pair:
            server.stop()


def _request(text: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(text, variable_values=variables)


async def _execute(url: str, text: str, **variables: Any) -> dict[str, Any]:
    async with Client(transport=HTTPXAsyncTransport(url=url, timeout=30)) as session:
        result: dict[str, Any] = await session.execute(_request(text, **variables))
        return result


async def test_subscribers_on_b_see_changes_made_on_a_over_both_protocols(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    after = 0
    protocols = (WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL)
    for protocol in protocols:
        after = await _deposits_on_a_reach_b(a, b, protocol, after)


async def _deposits_on_a_reach_b(
    a: ServerProcess, b: ServerProcess, protocol: str, after: int
) -> int:
    """Open an account and deposit 3 times on A; B's subscribers see it all. Returns the head."""
    opened = await _execute(a.http, OPEN, owner="alice")
    account_id = opened["openAccount"]["accountId"]
    transport = WebsocketsTransport(url=b.ws, subprotocols=[protocol])
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        changes = session.subscribe(_request(ACCOUNT_CHANGED, id=account_id))
        events = session.subscribe(_request(EVENTS, after=after))
        initial = (await take(changes, 1, within=30))[0]["accountChanged"]
        assert (initial["balance"], initial["version"]) == ("0.00", 1)
        opened_event = (await take(events, 1, within=30))[0]["events"]
        assert (opened_event["streamId"], opened_event["type"]) == (account_id, "AccountOpened")
        for amount in ("1.00", "2.00", "3.00"):
            await _execute(a.http, DEPOSIT, id=account_id, amount=amount)
        seen = initial
        async with asyncio.timeout(30):
            while seen["version"] != 4:  # latest-only: intermediate versions may be skipped
                seen = (await take(changes, 1, within=30))[0]["accountChanged"]
        assert seen["balance"] == "6.00"
        deposits = [e["events"] for e in await take(events, 3, within=30)]
        assert [e["type"] for e in deposits] == ["MoneyDeposited"] * 3
        positions = [opened_event["position"]] + [e["position"] for e in deposits]
        assert positions == list(range(after + 1, after + 5))
        await changes.aclose()
        await events.aclose()
    return after + 4
