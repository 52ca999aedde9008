"""Our stores on MongoDB (the embedded nx-27017 in benchmarks).

``mongo_backend(db)`` builds the events, snapshots and command-log stores on
one database and creates their indexes, as ``server.py`` does at start-up.
``mongo_workload_run`` is one run of the standard workload on a fresh database.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import Metrics, Stopwatch
from bench.mongo import fresh_database
from bench.workload import Backend, run_workload
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore


async def mongo_backend(db: AsyncDatabase[dict[str, Any]]) -> Backend:
    events, snapshots, log = MongoEventStore(db), MongoSnapshotStore(db), MongoCommandLog(db)
    for part in (events, snapshots, log):
        await part.ensure_indexes()
    return Backend(events, snapshots, log)


async def mongo_leases(db: AsyncDatabase[dict[str, Any]]) -> MongoLeases:
    leases = MongoLeases(db)
    await leases.ensure_indexes()
    return leases


async def mongo_workload_run(url: str, accounts: int, rounds: int) -> Metrics:
    """The standard workload on a fresh database of the server at ``url``."""
    async with fresh_database(url) as db:
        return await run_workload(await mongo_backend(db), accounts, rounds)


async def raw_position_read(db: AsyncDatabase[dict[str, Any]], batch: int) -> Metrics:
    """Every sequenced commit of ``events`` through one cursor sorted by position."""
    count = 0
    cursor = db["events"].find({"position": {"$gte": 1}}).sort("position", 1).batch_size(batch)
    with Stopwatch() as watch:
        async for doc in cursor:
            count += len(doc["events"])
    return {"events/s": count / watch.seconds}
