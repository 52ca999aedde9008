"""Consumers in separate OS processes on the embedded MongoDB: SIGKILL and takeover.

Reduced forms run by default; the ``slow`` forms run bigger workloads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.projections.bank_run import Ledger, check_bank, open_accounts, run_clients
from tests.projections.cluster import holders, settled, until
from tests.projections.mongo_world import mongo_world
from tests.wiring import World

ROOT = Path(__file__).resolve().parents[2]
LEASE_TTL = 2.0


class Workers:
    """Worker processes by owner name; every one still alive is stopped on exit."""

    def __init__(self, url: str, database: str, logs: Path) -> None:
        self.url, self.database, self.logs = url, database, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, owner: str, batch_size: int = 100, checkpoint_interval: float | None = None
    ) -> None:
        command = [
            sys.executable, "-m", "tests.projections.worker", "--url", self.url,
            "--database", self.database, "--owner", owner,
            "--lease-ttl", str(LEASE_TTL), "--batch-size", str(batch_size),
        ]  # fmt: skip
        if checkpoint_interval is not None:
            command += ["--checkpoint-interval", str(checkpoint_interval)]
        with (self.logs / f"{owner}.log").open("wb") as log:
            self.running[owner] = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def kill(self, owner: str) -> None:
        """SIGKILL, as a crash: no clean-up, leases left to expire."""
        process = self.running[owner]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


async def test_standby_process_takes_over_when_the_holder_is_killed(
    mongo_db: AsyncDatabase[dict[str, Any]], mongo_url: str, tmp_path: Path
) -> None:
    await takeover_run(mongo_db, mongo_url, tmp_path, accounts=4, transfers=8, cash=6)


@pytest.mark.slow
async def test_takeover_under_a_larger_workload(
    mongo_db: AsyncDatabase[dict[str, Any]], mongo_url: str, tmp_path: Path
) -> None:
    await takeover_run(mongo_db, mongo_url, tmp_path, accounts=20, transfers=100, cash=60)


async def takeover_run(
    mongo_db: AsyncDatabase[dict[str, Any]],
    mongo_url: str,
    logs: Path,
    *,
    accounts: int,
    transfers: int,
    cash: int,
) -> None:
    async with mongo_world(mongo_db) as world:
        with Workers(mongo_url, mongo_db.name, logs) as pool:
            pool.start("w1")
            await until(lambda: _held_by(world, {"w1"}), 30, "w1 never became active")
            pool.start("w2")
            ledger = Ledger()
            currencies = await open_accounts(world, accounts, ledger)
            half = {"transfers": transfers // 2, "cash": cash // 2}
            await run_clients(world, currencies, ledger, seed=1, **half)
            pool.kill("w1")
            killed = time.monotonic()
            await run_clients(world, currencies, ledger, seed=2, **half)
            await until(lambda: _held_by(world, {"w2"}), 10 * LEASE_TTL, "w2 never took over")
            assert time.monotonic() - killed < 10 * LEASE_TTL
            await settled(world)
            await check_bank(world, ledger)


async def _held_by(world: World, owners: set[str]) -> bool:
    return await holders(world) == owners


async def test_kill_mid_projection_then_restart_equals_a_rebuild(
    mongo_db: AsyncDatabase[dict[str, Any]], mongo_url: str, tmp_path: Path
) -> None:
    async with mongo_world(mongo_db) as world:
        ledger = Ledger()
        currencies = await open_accounts(world, 5, ledger)
        await run_clients(world, currencies, ledger, transfers=6, cash=100, seed=3)
        with Workers(mongo_url, mongo_db.name, tmp_path) as pool:
            # Every batch's checkpoint durable at once: the kill lands while the
            # durable checkpoint is mid-way (a held-back one is covered in memory
            # by test_consumer's crash test).
            pool.start("w1", batch_size=2, checkpoint_interval=0.0)

            async def midway() -> bool:
                checkpoint = await world.checkpoints.load("account_statement")
                return checkpoint.position > 20

            await until(midway, 30, "w1 made no progress", poll=0.005)
            pool.kill("w1")
            head = await world.store.head_position()
            assert (await world.checkpoints.load("account_statement")).position < head
            pool.start("w3")
            await settled(world)
            await check_bank(world, ledger)
