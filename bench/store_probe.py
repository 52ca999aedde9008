"""Diagnostic: what each query of a load costs on the embedded server, by collection size.

``python -m bench.store_probe 1000 10000 50000`` fills one ``events``
collection with 11-commit streams up to each size and prints the median time
of the store's lookups (snapshot, stream read, stream version, command id)
beside the query shapes they replaced: a bare string equality on
``stream_id`` and a command-id filter repeating ``$type``, which nx-27017
cannot serve from an index (it scans, and for ``$type`` filters in Python).
Not part of ``run_all``; prints to stdout only.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from bench.mongo import embedded_server
from store.mongo_commits import commit_document
from store.mongo_events import MongoEventStore, command_filter
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import CommitMetadata, NewEvent

Doc = dict[str, Any]
Probe = Callable[[int], Awaitable[object]]
COMMITS_PER_STREAM = 11
REPEATS = 30


def stream_name(number: int) -> str:
    return f"acc-{number:032x}"


def stream_commits(number: int) -> list[Doc]:
    """One account's commits, sequenced, each with a command id."""
    docs = []
    for version in range(1, COMMITS_PER_STREAM + 1):
        event = NewEvent(f"e-{number}-{version}", "MoneyDeposited", {"amount": 100}, 1)
        doc = commit_document(
            stream_id=stream_name(number),
            stream_type="account",
            version=version,
            events=[event],
            metadata=CommitMetadata(f"c-{number}-{version}", None, None, None),
            recorded_at=datetime.now(UTC),
            pending=0,
        )
        del doc["pending"]
        doc["position"] = number * COMMITS_PER_STREAM + version
        docs.append(doc)
    return docs


def probes(store: MongoEventStore, snapshots: MongoSnapshotStore) -> dict[str, Probe]:
    """Each lookup of a load, given a stream number."""
    events = store.collection
    return {
        "snapshots.latest": lambda n: snapshots.latest(stream_name(n)),
        "read_stream(s, 1)": lambda n: store.read_stream(stream_name(n), 1),
        "stream_version": lambda n: store.stream_version(stream_name(n)),
        "find_command": lambda n: store.find_command(f"c-{n}-5"),
        "old: bare equality + sort": lambda n: (
            events.find({"stream_id": stream_name(n)}).sort("version", 1).to_list(None)
        ),
        "old: command id with $type": lambda n: events.find_one(command_filter(f"c-{n}-5")),
    }


async def median_ms(probe: Probe, streams: int) -> float:
    samples = []
    for repeat in range(REPEATS):
        started = time.perf_counter()
        await probe(repeat * 7919 % streams)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def run(sizes: Sequence[int]) -> None:
    with embedded_server() as server:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(server.url, tz_aware=True)
        try:
            store, snapshots = MongoEventStore(client["probe"]), MongoSnapshotStore(client["probe"])
            await store.ensure_indexes()
            await snapshots.ensure_indexes()
            streams = 0
            for size in sizes:
                while streams < size // COMMITS_PER_STREAM:
                    batch = range(streams, min(streams + 200, size // COMMITS_PER_STREAM))
                    docs = [doc for number in batch for doc in stream_commits(number)]
                    await store.collection.insert_many(docs, ordered=False)
                    streams = batch[-1] + 1
                print(f"\n{streams * COMMITS_PER_STREAM} commits in {streams} streams (median ms)")
                for name, probe in probes(store, snapshots).items():
                    print(f"  {name:28s} {await median_ms(probe, streams):8.2f}")
        finally:
            await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    asyncio.run(run([int(size) for size in args] or [1000, 10000]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
