"""Three ``server.py`` processes, racing clients and injected faults; then every guarantee.

The servers share one embedded database. One runs with its clock 30 s ahead and
one 30 s behind (``CLOCK_SKEW_SECONDS``). Clients send deposits, withdrawals and
transfer requests with command ids to random servers; an answer that does not
come (the server is paused or dead) is asked for again, with the same command
id, from another server, until one answers. Some ids are reused on purpose:
for the same command (the first outcome must come back) and for a different
one (``IdempotencyKeyReused``). Meanwhile a fault injector pauses servers past
the lease TTL (SIGSTOP, then SIGCONT) and kills and restarts them (SIGKILL).

Afterwards: positions gap-free and in stream order, every acknowledged command
applied exactly once, no command id with two outcomes, money conserved, every
transfer finished, every read model equal to a rebuild, every consumer at the
head. A reduced run is part of the default suite; ``slow`` runs a longer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from domain.money import format_amount
from schema.commands import namespaced_command_id
from store.mongo_commits import PENDING
from tests.projections.bank_run import Ledger, check_bank, open_accounts
from tests.projections.cluster import settled
from tests.projections.mongo_world import mongo_world
from tests.runtime.processes import ServerProcess, clean_env, start_server
from tests.wiring import World

Database = AsyncDatabase[dict[str, Any]]

LEASE_TTL = 2.0
SKEWS = ("0", "30", "-30")
ANSWER_WITHIN = 4.0  # a request to a paused server is asked again elsewhere after this
GIVE_UP_AFTER = 120.0  # a command that no server acknowledges in this long fails the run

AMOUNT_RESULT = "__typename ... on AccountPayload { version duplicate } ... on Error { message }"
MUTATIONS = {
    "deposit": f"mutation($i: AmountInput!) {{ r: deposit(input: $i) {{ {AMOUNT_RESULT} }} }}",
    "withdraw": f"mutation($i: AmountInput!) {{ r: withdraw(input: $i) {{ {AMOUNT_RESULT} }} }}",
    "transfer": (
        "mutation($i: RequestTransferInput!) { r: requestTransfer(input: $i) {"
        " __typename ... on TransferPayload { duplicate transfer { id } }"
        " ... on Error { message } } }"
    ),
}
#: Answers after which a repeat of the same command id may succeed (nothing was decided).
UNDECIDED = {"ConcurrencyConflict"}


@dataclass
class Cluster:
    """The three servers; a paused or killed one is resumed or restarted by ``heal``."""

    mongo_url: str
    database: str
    workdir: Path
    servers: list[ServerProcess] = field(default_factory=list)
    paused: set[int] = field(default_factory=set)
    restarts: list[asyncio.Future[ServerProcess]] = field(default_factory=list)

    def start(self, index: int) -> ServerProcess:
        env = clean_env(
            MONGODB_URL=self.mongo_url,
            MONGODB_DATABASE=self.database,
            DATA_DIR=str(self.workdir / f"data-{index}"),
            LEASE_TTL_SECONDS=str(LEASE_TTL),
            POLL_INTERVAL_SECONDS="0.05",
            CLOCK_SKEW_SECONDS=SKEWS[index],
            AUTH_MODE="dev",
            LOG_LEVEL="WARNING",
        )
        server = start_server(self.workdir, env)
        server.wait_until("/healthz")
        if index < len(self.servers):
            self.servers[index] = server
        else:
            self.servers.append(server)
        return server

    def pause(self, index: int) -> None:
        self.servers[index].process.send_signal(signal.SIGSTOP)
        self.paused.add(index)

    def resume(self, index: int) -> None:
        self.servers[index].process.send_signal(signal.SIGCONT)
        self.paused.discard(index)

    def kill(self, index: int) -> None:
        process = self.servers[index].process
        process.kill()
        process.wait(10)
        self.paused.discard(index)

    def heal(self) -> None:
        """Every server running again: the paused resumed, the dead restarted."""
        for index in list(self.paused):
            self.resume(index)
        for index, server in enumerate(self.servers):
            if server.process.poll() is not None:
                self.start(index)

    def stop_all(self) -> None:
        for index in list(self.paused):
            self.resume(index)
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def cluster(mongo_url: str, database: str, workdir: Path) -> Iterator[Cluster]:
    group = Cluster(mongo_url, database, workdir)
    try:
        for index in range(len(SKEWS)):
            group.start(index)
        yield group
    finally:
        group.stop_all()


@dataclass
class Sent:
    """One command id as first sent: the mutation, its input and the answer it got."""

    mutation: str
    payload: dict[str, Any]
    answer: dict[str, Any]


class Clients:
    """Senders that never give up on an unanswered command: same id, another server."""

    def __init__(self, group: Cluster, http: httpx.AsyncClient, rng: random.Random) -> None:
        self.group, self.http, self.rng = group, http, rng
        self.sent: dict[str, Sent] = {}
        self.retries = 0

    async def send(self, mutation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The server's decided answer to ``payload`` (which carries its ``commandId``)."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < deadline:
            server = self.rng.choice(self.group.servers)
            body = {"query": MUTATIONS[mutation], "variables": {"i": payload}}
            try:
                response = await self.http.post(server.http, json=body, timeout=ANSWER_WITHIN)
            except httpx.HTTPError:
                self.retries += 1
                continue
            if response.status_code != 200:
                self.retries += 1
                await asyncio.sleep(0.05)
                continue
            answer: dict[str, Any] = response.json()["data"]["r"]
            if answer["__typename"] in UNDECIDED:
                await asyncio.sleep(0.05)
                continue
            return answer
        raise AssertionError(f"no server answered {mutation} {payload} in {GIVE_UP_AFTER}s")

    async def command(self, mutation: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = await self.send(mutation, payload)
        self.sent.setdefault(payload["commandId"], Sent(mutation, payload, answer))
        return answer


async def client(
    clients: Clients,
    name: str,
    currencies: dict[str, str],
    ledger: Ledger,
    operations: int,
    until: float,
    rng: random.Random,
) -> None:
    """At least ``operations`` random commands, and more until ``until`` (at most 20x as many).

    One in eight is a deliberate reuse of an earlier id.
    """
    accounts = list(currencies)
    mine: list[str] = []
    for n in range(operations * 20):
        if n >= operations and time.monotonic() >= until:
            break
        if mine and rng.random() < 0.125:
            await reuse(clients, rng.choice(mine), rng)
            continue
        command_id = f"{name}-{n}"
        mine.append(command_id)
        kind = rng.choice(("deposit", "withdraw", "transfer", "transfer"))
        amount = rng.randint(1, 2_500)
        if kind == "transfer":
            source, target = rng.sample(accounts, 2)
            payload = {
                "fromAccountId": source,
                "toAccountId": target,
                "amount": format_amount(amount),
                "commandId": command_id,
            }
            answer = await clients.command("transfer", payload)
            if answer["__typename"] == "TransferPayload":
                ledger.transfers.append(answer["transfer"]["id"])
            continue
        account = rng.choice(accounts)
        payload = {"accountId": account, "amount": format_amount(amount), "commandId": command_id}
        answer = await clients.command(kind, payload)
        if answer["__typename"] != "AccountPayload":
            continue
        if kind == "deposit":
            ledger.deposited[currencies[account]] += amount
        else:
            ledger.withdrawn[currencies[account]] += amount


async def reuse(clients: Clients, command_id: str, rng: random.Random) -> None:
    """Send ``command_id`` again: the same command gets the first outcome, another is refused."""
    first = clients.sent[command_id]
    if rng.random() < 0.5:
        again = await clients.send(first.mutation, first.payload)
        assert again["__typename"] == first.answer["__typename"], (first, again)
        if first.answer["__typename"] in ("AccountPayload", "TransferPayload"):
            assert again["duplicate"] is True, (first, again)
        if first.answer["__typename"] == "AccountPayload":
            assert again["version"] == first.answer["version"], (first, again)
        if first.answer["__typename"] == "TransferPayload":
            assert again["transfer"]["id"] == first.answer["transfer"]["id"], (first, again)
        return
    other = dict(first.payload, amount=format_amount(rng.randint(2_501, 3_000)))
    again = await clients.send(first.mutation, other)
    assert again["__typename"] == "IdempotencyKeyReused", (first, again)


async def inject_faults(group: Cluster, rng: random.Random, done: list[str]) -> None:
    """Pause servers past the lease TTL and kill/restart them, until cancelled.

    The first fault is a pause and the second a kill, so every run has both.
    """
    while True:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        index = rng.randrange(len(group.servers))
        if index in group.paused:
            continue
        if len(done) == 0 or (len(done) > 1 and rng.random() < 0.7):
            group.pause(index)
            await asyncio.sleep(rng.uniform(1.5, 2.5) * LEASE_TTL)
            group.resume(index)
            done.append(f"SIGSTOP/SIGCONT server {index}")
        else:
            group.kill(index)
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            # Shielded and remembered: a cancelled injector still lets the restart finish,
            # so the run's clean-up sees (and stops) the new process.
            restart = asyncio.ensure_future(asyncio.to_thread(group.start, index))
            group.restarts.append(restart)
            await asyncio.shield(restart)
            done.append(f"SIGKILL/restart server {index}")


@contextlib.asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=32, keepalive_expiry=1.0)
    async with httpx.AsyncClient(limits=limits) as http:
        yield http


async def chaos_run(
    mongo_db: Database,
    mongo_url: str,
    workdir: Path,
    *,
    clients: int,
    operations: int,
    seconds: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    faults_done: list[str] = []
    async with mongo_world(mongo_db, sequencer=False) as world:
        with cluster(mongo_url, mongo_db.name, workdir) as group:
            ledger = Ledger()
            currencies = await open_accounts(world, 8, ledger)
            async with http_client() as http:
                senders = Clients(group, http, random.Random(seed + 1))
                until = time.monotonic() + seconds
                work = asyncio.gather(
                    *(
                        client(senders, f"c{n}", currencies, ledger, operations, until, rng)
                        for n in range(clients)
                    )
                )
                faults = asyncio.ensure_future(
                    inject_faults(group, random.Random(seed + 2), faults_done)
                )
                try:
                    await work
                finally:
                    faults.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await faults
                    await asyncio.gather(*group.restarts, return_exceptions=True)
                    group.heal()
            assert any("SIGSTOP" in fault for fault in faults_done), faults_done
            assert any("SIGKILL" in fault for fault in faults_done), faults_done
            await settled(world, timeout=120)
            await check_positions(world)
            await check_command_ids(world, senders)
            await check_bank(world, ledger)


async def check_positions(world: World) -> None:
    """Positions tile 1..head with no gap or overlap; each stream's versions rise with them."""
    collection = world.store.collection  # type: ignore[attr-defined]
    assert await collection.find_one({PENDING: {"$gte": 0}}) is None, "a commit was never stamped"
    commits = [c async for c in collection.find({"position": {"$gte": 1}}).sort("position", 1)]
    expected = 1
    last_version: dict[str, int] = {}
    for commit in commits:
        assert commit["position"] == expected, (commit["_id"], commit["position"], expected)
        expected += len(commit["events"])
        stream = commit["stream_id"]
        assert commit["version"] > last_version.get(stream, 0), commit["_id"]
        last_version[stream] = commit["version"] + len(commit["events"]) - 1
    assert expected - 1 == await world.store.head_position()


async def check_command_ids(world: World, senders: Clients) -> None:
    """Every acknowledged command has exactly one commit; a rejected one has none."""
    for command_id, sent in senders.sent.items():
        commit = await world.store.find_command(namespaced_command_id("dev", command_id))
        succeeded = sent.answer["__typename"] in ("AccountPayload", "TransferPayload")
        assert (commit is not None) == succeeded, (command_id, sent.answer, commit)


async def test_three_servers_under_pauses_kills_and_skewed_clocks(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await chaos_run(mongo_db, mongo_url, tmp_path, clients=4, operations=25, seconds=15, seed=7)


@pytest.mark.slow
async def test_a_long_randomized_run_under_pauses_kills_and_skewed_clocks(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await chaos_run(mongo_db, mongo_url, tmp_path, clients=8, operations=150, seconds=150, seed=11)
