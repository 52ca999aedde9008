"""One command id, one outcome, across real processes on the embedded MongoDB.

Two ``server.py`` processes share one database. Copies of one command id sent
to both at once get one answer; a process paused (SIGSTOP) between its
decision and its write cannot add a commit after its successor recorded a
rejection. Money is conserved afterwards: every balance, replayed from its
stream, equals what the clients were told happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from pymongo import AsyncMongoClient

from domain.money import format_amount
from runtime.embedded import EmbeddedMongo
from tests.projections.mongo_world import mongo_world
from tests.runtime.processes import ROOT, ServerProcess, clean_env, start_server
from tests.wiring import World

ANSWER = """__typename
  ... on AccountPayload { accountId version duplicate }
  ... on Error { message }
  ... on InsufficientFunds { balance requested }
  ... on IdempotencyKeyReused { originalCommandType }"""
DEPOSIT = "mutation($i: AmountInput!) { r: deposit(input: $i) {" + ANSWER + "} }"
WITHDRAW = "mutation($i: AmountInput!) { r: withdraw(input: $i) {" + ANSWER + "} }"


class Servers:
    """``server.py`` processes on one database, each with its own DATA_DIR and port.

    Requests may take up to a minute: a queue of commands on one stream, on a
    busy two-core machine, must not be cut off by the request time bound,
    which is not what these tests are about.
    """

    def __init__(self, mongo_url: str, database: str, workdir: Path) -> None:
        self.mongo_url, self.database, self.workdir = mongo_url, database, workdir
        self.started: list[ServerProcess] = []

    def start(self) -> ServerProcess:
        env = clean_env(
            MONGODB_URL=self.mongo_url,
            MONGODB_DATABASE=self.database,
            DATA_DIR=str(self.workdir / f"data-{len(self.started)}"),
            AUTH_MODE="dev",
            LOG_LEVEL="WARNING",
            REQUEST_TIMEOUT_SECONDS="60",
        )
        server = start_server(self.workdir, env)
        self.started.append(server)
        server.wait_until("/healthz")
        return server


@pytest.fixture(scope="module")
def cluster(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Servers, str]]:
    """Two ``server.py`` processes on one fresh database, for every test of this module."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    group = Servers(embedded_mongo.url, database, tmp_path_factory.mktemp("commands"))
    try:
        group.start()
        group.start()
        yield group, database
    finally:
        for server in group.started:
            server.stop()


@pytest.fixture
async def world(
    embedded_mongo: EmbeddedMongo, cluster: tuple[Servers, str]
) -> AsyncIterator[World]:
    """The cluster's database seen from the test (no sequencer: the servers run it)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(embedded_mongo.url)
    try:
        async with mongo_world(client[cluster[1]], sequencer=False) as made:
            yield made
    finally:
        await client.close()


async def send(
    http: httpx.AsyncClient, server: ServerProcess, query: str, **fields: Any
) -> dict[str, Any]:
    response = await http.post(server.http, json={"query": query, "variables": {"i": fields}})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"]["r"]
    return answer


async def balance(world: World, account_id: str) -> int:
    """The balance replayed from the account's stream (no read model involved)."""
    return int((await world.service.load("account", account_id)).state.balance)


async def records_of(world: World, command_id: str) -> list[dict[str, Any]]:
    """Every document of the events collection that carries ``command_id``."""
    collection = world.store.collection  # type: ignore[attr-defined]
    found: list[dict[str, Any]] = await collection.find(
        {"metadata.command_id": command_id}
    ).to_list(None)
    return found


async def test_copies_of_one_command_id_on_two_servers_get_one_outcome(
    cluster: tuple[Servers, str], world: World
) -> None:
    group, _ = cluster
    rng = random.Random(3)
    accounts = [await world.open_account(deposit=1_000) for _ in range(3)]
    plan = [
        (f"w-{uuid.uuid4().hex[:8]}", accounts[i % 3], rng.randint(200, 700)) for i in range(12)
    ]
    deposits = [(accounts[i % 3], 300) for i in range(6)]

    async with httpx.AsyncClient(timeout=60) as http:
        copies = [
            send(
                http, group.started[copy % 2], WITHDRAW,
                accountId=account, amount=format_amount(amount), commandId=key,
            )
            for key, account, amount in plan
            for copy in range(4)
        ]  # fmt: skip
        racing = [
            send(http, group.started[n % 2], DEPOSIT, accountId=a, amount=format_amount(m))
            for n, (a, m) in enumerate(deposits)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*copies, *racing), timeout=120)

    assert all(a["__typename"] == "AccountPayload" for a in answers[len(copies) :])
    withdrawn: Counter[str] = Counter()
    for index, (key, account, amount) in enumerate(plan):
        four = answers[4 * index : 4 * index + 4]
        assert len({a["__typename"] for a in four}) == 1, four
        records = await records_of(world, f"dev:{key}")
        assert len(records) == 1, records
        if four[0]["__typename"] == "AccountPayload":
            assert len({a["version"] for a in four}) == 1, four
            assert sorted(a["duplicate"] for a in four) == [False, True, True, True]
            assert "rejection" not in records[0]
            withdrawn[account] += amount
        else:
            assert four[0]["__typename"] == "InsufficientFunds", four
            assert all(a == four[0] for a in four), four
            assert records[0]["rejection"]["code"] == "insufficient_funds"
    deposited = Counter(account for account, _ in deposits)
    for account in accounts:
        assert (
            await balance(world, account) == 1_000 + 300 * deposited[account] - withdrawn[account]
        )


class PausingWorker:
    """``tests.application.pausing_worker`` as a child process, stopped once it has decided."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, database: str, account: str, amount: int, key: str) -> Self:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.application.pausing_worker",
            "--url", url, "--database", database, "--account", account,
            "--amount", str(amount), "--command-id", key,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return cls(process)

    async def decided(self) -> str:
        """What it decided ("commit" or "rejection"), once the kernel shows it stopped."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
        kind, _, decision = line.decode().strip().partition(" ")
        assert kind == "decided", line
        await stopped(self.process.pid)
        return decision

    async def outcome(self) -> dict[str, Any]:
        """Continue it (SIGCONT) and return the outcome it printed."""
        self.process.send_signal(signal.SIGCONT)
        output, _ = await asyncio.wait_for(self.process.communicate(), timeout=60)
        answer: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
        return answer

    async def end(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
            await asyncio.wait_for(self.process.wait(), timeout=10)


async def test_copies_paused_between_decision_and_write_record_one_outcome(
    cluster: tuple[Servers, str], world: World, embedded_mongo: EmbeddedMongo
) -> None:
    """Two processes handle one ``Withdraw(50.00)`` id and each stops before its write.

    R decides on balance 0 (rejection) and stops; 100.00 arrive; C decides on
    balance 100.00 (commit, at the stream's current version) and stops. R
    writes first, then C. With a commit and a rejection under different keys,
    C's append would succeed (the stream did not move) and the id would have
    both outcomes, answered differently. One key decides: C's write is refused
    and both answer R's rejection, as does a server asked later.
    """
    group, database = cluster
    account = await world.open_account()
    key = f"paused-{uuid.uuid4().hex[:8]}"
    url, command_id = embedded_mongo.url, f"dev:{key}"
    rejecter = await PausingWorker.start(url, database, account, 5_000, command_id)
    committer: PausingWorker | None = None
    try:
        assert await rejecter.decided() == "rejection"
        async with httpx.AsyncClient(timeout=60) as http:
            funded = await send(http, group.started[0], DEPOSIT, accountId=account, amount="100")
            assert funded["__typename"] == "AccountPayload"
            committer = await PausingWorker.start(url, database, account, 5_000, command_id)
            assert await committer.decided() == "commit"
            first = await rejecter.outcome()
            second = await committer.outcome()
            later = [
                await send(http, server, WITHDRAW, accountId=account, amount="50", commandId=key)
                for server in group.started
            ]
    finally:
        await rejecter.end()
        if committer is not None:
            await committer.end()

    assert first == second == {"rejected": "insufficient_funds"}
    assert [answer["__typename"] for answer in later] == ["InsufficientFunds"] * 2
    records = await records_of(world, command_id)
    assert len(records) == 1
    assert "rejection" in records[0]
    assert await balance(world, account) == 10_000  # the deposit, and nothing withdrawn
    assert await world.store.stream_version(account) == 2


async def stopped(pid: int, within: float = 10.0) -> None:
    """Until the kernel reports ``pid`` as stopped (state T)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stat = await asyncio.to_thread(Path(f"/proc/{pid}/stat").read_text)
        if stat.rsplit(")", 1)[1].split()[0] in ("T", "t"):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"process {pid} did not stop")


async def hot_deposits(world: World, senders: list[ServerProcess], each: int) -> None:
    """``each`` concurrent deposits of 1.00 per server to one account: none refused.

    The account's versions are contiguous and its balance is exact afterwards.
    """
    account = await world.open_account()
    limits = httpx.Limits(max_connections=len(senders) * each)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        answers = await asyncio.wait_for(
            asyncio.gather(
                *(
                    send(http, server, DEPOSIT, accountId=account, amount="1")
                    for server in senders
                    for _ in range(each)
                )
            ),
            timeout=300,
        )
    total = len(senders) * each
    assert [a["__typename"] for a in answers] == ["AccountPayload"] * total
    assert sorted(a["version"] for a in answers) == list(range(2, total + 2))
    events = await world.store.read_stream(account)
    assert [e.version for e in events] == list(range(1, total + 2))
    assert await balance(world, account) == 100 * total


async def test_two_hundred_concurrent_deposits_to_one_account_on_one_server(
    cluster: tuple[Servers, str], world: World
) -> None:
    await hot_deposits(world, cluster[0].started[:1], 200)


async def test_two_servers_take_a_hundred_concurrent_deposits_each_to_one_account(
    cluster: tuple[Servers, str], world: World
) -> None:
    await hot_deposits(world, cluster[0].started, 100)
