"""Durability: SIGKILL the database under write load, restart, audit.

Every acknowledged commit must be present exactly once afterwards; a commit
whose append failed with a network error is either fully present or absent;
after sequencing, positions are 1..N with each commit once and streams in order.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from runtime.embedded import EmbeddedMongo, free_port
from store.driver import to_list
from store.memory import InMemoryLeases
from store.mongo_events import MongoEventStore
from store.protocol import CommitMetadata, ConcurrencyError, NewEvent
from store.sequencer import Sequencer
from tests.store.ordering import assert_global_order, read_everything


@dataclass
class Audit:
    """What the writers meant to write and what they were told."""

    intended: dict[str, list[str]] = field(default_factory=dict)  # command id -> event ids
    acked: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    errors: int = 0
    unknown_present: int = 0  # failed appends that had in fact been written (whole)


@dataclass(frozen=True)
class Load:
    writers: int
    kills: int
    seconds_between_kills: float
    down_seconds: float
    max_commits_per_writer: int


async def _writer(
    store: MongoEventStore, writer: int, audit: Audit, stop: asyncio.Event, load: Load
) -> None:
    rng = random.Random(writer)
    streams = [f"s-{i}" for i in range(6)]
    for n in range(load.max_commits_per_writer):
        if stop.is_set():
            return
        command_id = f"w{writer}-{n}"
        ids = [f"{command_id}-{i}" for i in range(rng.randint(1, 4))]
        audit.intended[command_id] = ids
        try:
            stream = rng.choice(streams)
            version = await store.stream_version(stream)
            await store.append(
                stream,
                "load",
                version,
                [NewEvent(i, "Loaded", {"n": n}) for i in ids],
                CommitMetadata(command_id=command_id),
            )
        except ConcurrencyError:
            continue
        except PyMongoError:
            audit.unknown.add(command_id)
            audit.errors += 1
            await asyncio.sleep(0.05)  # the database is down: do not spin
            continue
        audit.acked.add(command_id)


async def _kill_and_restart(server: EmbeddedMongo, load: Load) -> None:
    for _ in range(load.kills):
        await asyncio.sleep(load.seconds_between_kills)
        server.kill()
        await asyncio.sleep(load.down_seconds)
        await asyncio.to_thread(server.start)
    await asyncio.sleep(load.seconds_between_kills)


async def _audit(store: MongoEventStore, audit: Audit) -> None:
    docs = await to_list(store.collection.find({}))
    by_command: dict[str, dict[str, Any]] = {}
    for doc in docs:
        command_id = doc["metadata"]["command_id"]
        assert command_id not in by_command, f"{command_id} stored twice"
        by_command[command_id] = doc
        # Never half a commit: exactly the events the writer sent.
        assert [e["event_id"] for e in doc["events"]] == audit.intended[command_id]
    missing = audit.acked - by_command.keys()
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
    assert by_command.keys() <= audit.acked | audit.unknown
    audit.unknown_present = len(audit.unknown & by_command.keys())
    for stream in {doc["stream_id"] for doc in docs}:
        versions = [e.version for e in await store.read_stream(stream)]
        assert versions == list(range(1, len(versions) + 1))
    for _ in range(100):
        if await store.sequence() == 0:
            break
    events = await read_everything(store)
    assert_global_order(events)
    assert len(events) == sum(len(doc["events"]) for doc in docs)


async def _run(tmp_path: Path, load: Load) -> Audit:
    server = EmbeddedMongo(tmp_path / "nx", port=free_port())
    server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        server.url, serverSelectionTimeoutMS=1000, connectTimeoutMS=500, socketTimeoutMS=3000
    )
    audit = Audit()
    try:
        store = MongoEventStore(client["durability"])
        await store.ensure_indexes()
        sequencer = Sequencer(store, InMemoryLeases(), poll_interval=0.02)
        sequencing = asyncio.create_task(sequencer.run())
        stop = asyncio.Event()
        writers = [
            asyncio.create_task(_writer(store, w, audit, stop, load)) for w in range(load.writers)
        ]
        try:
            await _kill_and_restart(server, load)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*writers), 30)
            sequencer.stop()
            await asyncio.wait_for(sequencing, 30)
        await _audit(store, audit)
    finally:
        await client.close()
        server.stop()
    return audit


async def test_acknowledged_commits_survive_a_sigkill(tmp_path: Path) -> None:
    # Writers run until stopped (the cap only bounds the loop), and the database
    # stays down longer than the client's server-selection timeout, so writes in
    # flight or attempted meanwhile fail however fast or loaded the machine is.
    load = Load(
        writers=4, kills=1, seconds_between_kills=1.0, down_seconds=1.3, max_commits_per_writer=5000
    )
    audit = await _run(tmp_path, load)
    assert audit.acked, "no commit was acknowledged"
    assert audit.errors > 0, "the kill did not interrupt any write"


@pytest.mark.slow
async def test_acknowledged_commits_survive_repeated_sigkills(tmp_path: Path) -> None:
    load = Load(
        writers=8, kills=5, seconds_between_kills=3.0, down_seconds=0.5, max_commits_per_writer=5000
    )
    audit = await _run(tmp_path, load)
    assert len(audit.acked) > 100
    assert audit.errors > 0
