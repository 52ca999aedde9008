"""Leases on MongoDB are judged by the server's clock, whatever this process's clock says."""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from store.mongo_leases import MongoLeases, ServerClock
from store.records import set_clock_skew

Database = AsyncDatabase[dict[str, Any]]


async def test_the_server_clock_ignores_this_process_clock_skew(mongo_db: Database) -> None:
    set_clock_skew(30)
    try:
        now = await ServerClock(mongo_db).now_ms()
    finally:
        set_clock_skew(0)
    # nx-27017 runs on this machine with the true clock; the skew must not show.
    assert abs(now - time.time() * 1000) < 2_000


async def test_a_process_whose_clock_runs_ahead_takes_no_live_lease(mongo_db: Database) -> None:
    held = await MongoLeases(mongo_db).acquire("seq", "on-time", 10)
    assert held is not None
    for skew in (30, -30):
        set_clock_skew(skew)
        try:
            skewed = MongoLeases(mongo_db)
            assert await skewed.acquire("seq", f"skewed-{skew}", 10) is None
            holder = await skewed.holder("seq")
        finally:
            set_clock_skew(0)
        assert holder is not None
        assert (holder.owner, holder.epoch, holder.live) == ("on-time", held.epoch, True)


async def test_a_process_whose_clock_runs_behind_writes_live_expiries(mongo_db: Database) -> None:
    set_clock_skew(-30)
    try:
        held = await MongoLeases(mongo_db).acquire("seq", "behind", 10)
    finally:
        set_clock_skew(0)
    assert held is not None
    assert abs(held.expires_at_ms - (time.time() * 1000 + 10_000)) < 2_000
    assert await MongoLeases(mongo_db).acquire("seq", "other", 10) is None
