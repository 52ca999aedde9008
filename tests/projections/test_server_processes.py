"""Consumers inside real ``server.py`` processes on the embedded MongoDB: SIGKILL and takeover.

Two server processes, the one holding the consumer
leases is killed and the other takes over; a server killed while projecting a
backlog is restarted. Either way the read models end equal to a from-scratch
rebuild (``check_bank``): nothing skipped, nothing applied twice. Reduced forms
run by default; the ``slow`` forms run bigger workloads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.projections.bank_run import Ledger, check_bank, open_accounts, run_clients
from tests.projections.cluster import holders, settled, until
from tests.projections.mongo_world import mongo_world
from tests.runtime.processes import ServerProcess, clean_env, start_server
from tests.wiring import World

LEASE_TTL = 2.0
TAKEOVER_WITHIN = 3 * LEASE_TTL + 2.0  # expiry, the standby's next attempt, slack for 2 cores
STATEMENT = "account_statement"
Database = AsyncDatabase[dict[str, Any]]


class Servers:
    """``server.py`` processes on one database, each with its own DATA_DIR and port."""

    def __init__(self, mongo_url: str, database: str, workdir: Path) -> None:
        self.mongo_url, self.database, self.workdir = mongo_url, database, workdir
        self.started: list[ServerProcess] = []

    def start(self, *, clock_skew: float = 0) -> ServerProcess:
        """One more server; ``clock_skew`` seconds shift its wall clock (CLOCK_SKEW_SECONDS)."""
        data = self.workdir / f"data-{len(self.started)}"
        env = clean_env(
            MONGODB_URL=self.mongo_url,
            MONGODB_DATABASE=self.database,
            DATA_DIR=str(data),
            LEASE_TTL_SECONDS=str(LEASE_TTL),
            POLL_INTERVAL_SECONDS="0.05",
            AUTH_MODE="dev",
            LOG_LEVEL="WARNING",
            CLOCK_SKEW_SECONDS=str(clock_skew),
        )
        server = start_server(self.workdir, env)
        self.started.append(server)
        server.wait_until("/healthz")
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@contextmanager
def servers(mongo_url: str, database: str, workdir: Path) -> Iterator[Servers]:
    group = Servers(mongo_url, database, workdir)
    try:
        yield group
    finally:
        group.stop_all()


def kill(server: ServerProcess) -> None:
    """SIGKILL, as a crash: no clean-up, its leases left to expire."""
    server.process.kill()
    server.process.wait(10)


async def lease_pids(world: World) -> set[int | None]:
    """The pid of each consumer lease's live holder (owners are ``host:pid:random``)."""
    return {None if owner is None else int(owner.split(":")[1]) for owner in await holders(world)}


async def held_by(world: World, server: ServerProcess) -> bool:
    return await lease_pids(world) == {server.process.pid}


async def test_the_standby_server_takes_over_when_the_lease_holder_is_killed(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await takeover_run(mongo_db, mongo_url, tmp_path, accounts=4, transfers=6, cash=6)


@pytest.mark.slow
async def test_server_takeover_under_a_larger_workload(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await takeover_run(mongo_db, mongo_url, tmp_path, accounts=20, transfers=100, cash=60)


async def takeover_run(
    mongo_db: Database, mongo_url: str, workdir: Path, *, accounts: int, transfers: int, cash: int
) -> None:
    async with mongo_world(mongo_db, sequencer=False) as world:
        with servers(mongo_url, mongo_db.name, workdir) as group:
            first = group.start()
            await until(lambda: held_by(world, first), 30, "the first server never became active")
            second = group.start()
            ledger = Ledger()
            currencies = await open_accounts(world, accounts, ledger)
            half = {"transfers": transfers // 2, "cash": cash // 2}
            await run_clients(world, currencies, ledger, seed=1, **half)
            pids = await lease_pids(world)
            holder = first if first.process.pid in pids else second
            standby = second if holder is first else first
            kill(holder)
            killed = time.monotonic()
            await run_clients(world, currencies, ledger, seed=2, **half)
            await until(lambda: held_by(world, standby), 10 * LEASE_TTL, "no takeover")
            assert time.monotonic() - killed < TAKEOVER_WITHIN
            await settled(world)
            await check_bank(world, ledger)


async def test_a_server_killed_mid_projection_restarts_to_equal_a_rebuild(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await kill_mid_projection(mongo_db, mongo_url, tmp_path, accounts=20, transfers=6, deposits=700)


@pytest.mark.slow
async def test_a_server_killed_mid_projection_of_a_large_backlog(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    await kill_mid_projection(
        mongo_db, mongo_url, tmp_path, accounts=20, transfers=60, deposits=5_000
    )


async def kill_mid_projection(
    mongo_db: Database,
    mongo_url: str,
    workdir: Path,
    *,
    accounts: int,
    transfers: int,
    deposits: int,
) -> None:
    """A backlog written with no consumer running; the server dies while projecting it."""
    async with mongo_world(mongo_db) as world:
        ledger = Ledger()
        currencies = await open_accounts(world, accounts, ledger)
        await deposit_backlog(world, currencies, ledger, deposits)
        await run_clients(world, currencies, ledger, transfers=transfers, cash=20, seed=3)
        await world.store.sequence()
        head = await world.store.head_position()
        with servers(mongo_url, mongo_db.name, workdir) as group:
            server = group.start()

            async def started() -> bool:
                return (await world.checkpoints.load(STATEMENT)).position > 0

            # Batches are at most 500 events: the first checkpoint lands well before the head.
            assert head > 600
            await until(started, 30, "the server made no progress", poll=0.002)
            kill(server)
            assert (await world.checkpoints.load(STATEMENT)).position < head, "not mid-backlog"
            group.start()
            await settled(world)
            await check_bank(world, ledger)


async def deposit_backlog(
    world: World, currencies: dict[str, str], ledger: Ledger, deposits: int
) -> None:
    """``deposits`` deposits of 1, one writer per account at a time (quick to write)."""
    accounts = list(currencies)

    async def writer(account: str, count: int) -> None:
        for _ in range(count):
            await world.deposit(account, 1)
            ledger.deposited[currencies[account]] += 1

    shares = [
        deposits // len(accounts) + (i < deposits % len(accounts)) for i in range(len(accounts))
    ]
    await asyncio.gather(*(writer(a, n) for a, n in zip(accounts, shares, strict=True)))
