"""The embedded database for benchmarks, and the raw-driver baselines on it.

``embedded_server()`` starts one nx-27017 child in a temporary directory (its
own pid and log files there) and always stops it. The raw baselines are what
the store cannot beat on the same server: one ``insert_one`` per command, and
one sorted ``find`` over already-stored documents.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import Metrics, Stopwatch
from runtime.embedded import EmbeddedMongo

Doc = dict[str, Any]


@contextlib.contextmanager
def embedded_server() -> Iterator[EmbeddedMongo]:
    """A running nx-27017 on a free loopback port, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-nx-") as tmp:
        server = EmbeddedMongo(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    """A uniquely named database, dropped afterwards so runs start equal."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(url, tz_aware=True)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(name)
        await client.close()


def small_commit(stream: int, version: int) -> Doc:
    """About the size of one deposit commit, without the store's bookkeeping."""
    return {
        "_id": f"acc-{stream:032x}:{version}",
        "stream_id": f"acc-{stream:032x}",
        "version": version,
        "events": [{"type": "MoneyDeposited", "data": {"amount": 100, "balance": 100 * version}}],
    }


async def raw_insert_run(url: str, accounts: int, rounds: int) -> Metrics:
    """Insert as many single small documents as the workload sends commands."""
    async with fresh_database(url) as db:
        collection = db["raw"]
        await collection.insert_one({"_id": "warm-up"})
        with Stopwatch() as write:
            for version in range(1, rounds + 2):
                for stream in range(accounts):
                    await collection.insert_one(small_commit(stream, version))
    return {"commands/s": accounts * (rounds + 1) / write.seconds}


async def raw_commit_insert_run(url: str, accounts: int, rounds: int) -> Metrics:
    """``insert_one`` of the store's own commit documents, under the store's indexes.

    Diagnostic: the gap between this and the plain raw insert is the storage
    engine's cost of our document shape and indexes; the gap between this and
    the store is our code (service, store, driver round trips).
    """
    from application.ids import new_event_id
    from store.mongo_commits import commit_document
    from store.mongo_events import MongoEventStore
    from store.protocol import CommitMetadata, NewEvent
    from store.records import epoch_ms, utc_now

    async with fresh_database(url) as db:
        events = MongoEventStore(db, collection="raw_commits")
        await events.ensure_indexes()
        with Stopwatch() as write:
            for version in range(1, rounds + 2):
                for stream in range(accounts):
                    data = {"account_id": f"acc-{stream:032x}", "amount": 100, "balance": 100}
                    doc = commit_document(
                        stream_id=f"acc-{stream:032x}",
                        stream_type="account",
                        version=version,
                        events=[NewEvent(new_event_id(), "MoneyDeposited", data)],
                        metadata=CommitMetadata(),
                        recorded_at=utc_now(),
                        pending=epoch_ms(),
                    )
                    await events.collection.insert_one(doc)
    return {"commands/s": accounts * (rounds + 1) / write.seconds}
