"""Our stores on MongoDB (the embedded nx-27017 in benchmarks).

Placeholder until ``store/mongo_events.py`` lands: every entry point raises.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import Metrics
from bench.workload import Backend


class MongoStoreMissing(RuntimeError):
    """The MongoDB stores are not in the repository yet."""


async def mongo_backend(db: AsyncDatabase[dict[str, Any]]) -> Backend:
    raise MongoStoreMissing("store/mongo_events.py has not landed yet")


async def mongo_workload_run(url: str, accounts: int, rounds: int) -> Metrics:
    raise MongoStoreMissing("store/mongo_events.py has not landed yet")
