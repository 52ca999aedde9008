"""Fenced leases judged by the database clock, with real ``server.py`` processes.

The scenarios: a server that holds the ``accounts`` consumer is
paused (SIGSTOP) past its lease while ``ledger projections rebuild accounts``
runs, then resumed (SIGCONT) and a deposit follows; servers whose clocks run
30 s ahead and behind share one database. After each: money conserved, every
transfer finished, every read model equal to a rebuild from scratch, every
consumer at the head (``check_bank``, ``settled``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from projections.checkpoints import StatusReporter
from tests.projections.bank_run import Ledger, check_bank, open_accounts, run_clients
from tests.projections.cluster import settled, until
from tests.projections.mongo_world import mongo_world
from tests.projections.test_server_processes import (
    LEASE_TTL,
    TAKEOVER_WITHIN,
    Servers,
    held_by,
    kill,
    lease_pids,
    servers,
)
from tests.runtime.processes import run_cli

Database = AsyncDatabase[dict[str, Any]]
ACCOUNTS = "accounts"


def cli_env(group: Servers) -> dict[str, str]:
    return {
        "MONGODB_URL": group.mongo_url,
        "MONGODB_DATABASE": group.database,
        "DATA_DIR": str(group.workdir / "cli-data"),
        "LEASE_TTL_SECONDS": str(LEASE_TTL),
        "LOG_LEVEL": "WARNING",
    }


async def sequencer_pid(database: Database) -> int | None:
    doc = await database["leases"].find_one({"_id": "sequencer"})
    return None if doc is None else int(str(doc["owner"]).split("-")[0])


async def test_a_server_paused_past_its_lease_during_a_rebuild_projects_into_the_new_collection(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    async with mongo_world(mongo_db, sequencer=False) as world:
        with servers(mongo_url, mongo_db.name, tmp_path) as group:
            server = group.start()
            await until(lambda: held_by(world, server), 30, "the server never became active")
            ledger = Ledger()
            currencies = await open_accounts(world, 4, ledger)
            await run_clients(world, currencies, ledger, transfers=3, cash=6, seed=5)
            await settled(world)
            old = await world.documents.resolve(ACCOUNTS, fresh=True)

            server.process.send_signal(signal.SIGSTOP)
            try:
                # Past the TTL: the rebuild takes the consumer's lease, fences the
                # checkpoint, switches it and the alias, and drops the old collection.
                done = await asyncio.to_thread(
                    run_cli, "projections", "rebuild", ACCOUNTS, env=cli_env(group), cwd=tmp_path
                )
            finally:
                server.process.send_signal(signal.SIGCONT)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"rebuilt {ACCOUNTS}" in done.stdout
            new = await world.documents.resolve(ACCOUNTS, fresh=True)
            assert new != old

            account = next(iter(currencies))
            await world.deposit(account, 7)
            ledger.deposited[currencies[account]] += 7
            await run_clients(world, currencies, ledger, transfers=2, cash=4, seed=6)
            await settled(world)
            await check_bank(world, ledger)  # read through the alias: the new collection
            assert old not in await mongo_db.list_collection_names()  # not recreated
            reporter = StatusReporter(world.store, world.checkpoints, world.leases, [ACCOUNTS])
            (status,) = await reporter.report()
            assert (status.state, status.lag_events) == ("running", 0)
            assert await held_by(world, server)  # it took over again, as a newcomer


async def test_servers_with_clocks_30s_ahead_and_behind_share_leases_by_the_database_clock(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    async with mongo_world(mongo_db, sequencer=False) as world:
        with servers(mongo_url, mongo_db.name, tmp_path) as group:
            behind = group.start(clock_skew=-30)
            await until(lambda: held_by(world, behind), 30, "the server never became active")
            ahead = group.start(clock_skew=30)
            ledger = Ledger()
            currencies = await open_accounts(world, 4, ledger)
            # The server running ahead must not see the live leases as expired (nor
            # the one behind see its own as dead): they stay where they are.
            watched_until = time.monotonic() + 3 * LEASE_TTL
            while time.monotonic() < watched_until:
                await run_clients(world, currencies, ledger, transfers=1, cash=2, seed=7)
                assert await lease_pids(world) == {behind.process.pid}
                assert await sequencer_pid(mongo_db) == behind.process.pid
            await settled(world)
            await check_bank(world, ledger)

            kill(behind)  # ... and once it is dead, the one ahead takes over in time
            killed = time.monotonic()
            await run_clients(world, currencies, ledger, transfers=2, cash=4, seed=8)
            await until(lambda: held_by(world, ahead), 10 * LEASE_TTL, "no takeover")
            assert time.monotonic() - killed < TAKEOVER_WITHIN
            await settled(world)
            await check_bank(world, ledger)


async def test_a_server_paused_past_its_leases_while_another_takes_over_moves_money_once(
    mongo_db: Database, mongo_url: str, tmp_path: Path
) -> None:
    """Two copies of every consumer, the transfer process manager included, once the
    paused one resumes: its stale batch may send commands again (same derived ids, one
    outcome each), but its checkpoint writes are refused and it stops at once."""
    async with mongo_world(mongo_db, sequencer=False) as world:
        with servers(mongo_url, mongo_db.name, tmp_path) as group:
            first = group.start()
            await until(lambda: held_by(world, first), 30, "the server never became active")
            second = group.start()
            ledger = Ledger()
            currencies = await open_accounts(world, 6, ledger)
            await run_clients(world, currencies, ledger, transfers=4, cash=4, seed=9)
            first.process.send_signal(signal.SIGSTOP)  # transfers still in flight
            try:
                await run_clients(world, currencies, ledger, transfers=6, cash=4, seed=10)
                await until(lambda: held_by(world, second), 10 * LEASE_TTL, "no takeover")
                await run_clients(world, currencies, ledger, transfers=4, cash=4, seed=11)
            finally:
                first.process.send_signal(signal.SIGCONT)
            await run_clients(world, currencies, ledger, transfers=4, cash=4, seed=12)
            await settled(world)
            await check_bank(world, ledger)
            assert await held_by(world, second)
