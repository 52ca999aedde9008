"""Random transfers among accounts with concurrent deposits and withdrawals (in memory)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.projections.bank_run import check_bank, run_bank
from tests.projections.mongo_world import mongo_world
from tests.wiring import memory_world


async def test_200_random_transfers_among_20_accounts() -> None:
    world = memory_world()
    group = world.group()
    try:
        ledger = await run_bank(world, group, accounts=20, transfers=200, cash=100, seed=7)
    finally:
        await group.stop()
    await check_bank(world, ledger)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
async def test_2000_random_transfers_with_two_competing_groups(seed: int) -> None:
    world = memory_world()
    a, b = world.group(owner="a"), world.group(owner="b")
    b.start()
    try:
        ledger = await run_bank(world, a, accounts=20, transfers=2000, cash=1000, seed=seed)
    finally:
        await a.stop()
        await b.stop()
    await check_bank(world, ledger)


@pytest.mark.slow
async def test_200_random_transfers_on_the_embedded_database(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    async with mongo_world(mongo_db) as world:
        group = world.group()
        try:
            ledger = await run_bank(world, group, accounts=20, transfers=200, cash=100, seed=11)
        finally:
            await group.stop()
        await check_bank(world, ledger)
