"""The sequencer: contiguous positions, each commit once, per-stream order, lease, wake-up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from store.memory import InMemoryEventStore, InMemoryLeases
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.protocol import NewEvent
from store.records import set_clock_skew
from store.sequencer import Sequencer
from store.stamping import stamp_pending
from tests.store.ordering import assert_global_order, read_everything, write_load

Client = AsyncMongoClient[dict[str, Any]]


@pytest.fixture
async def two_processes(mongo_url: str) -> AsyncIterator[tuple[MongoEventStore, MongoEventStore]]:
    """Two stores on one database through two clients, as two server processes would be."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    clients: list[Client] = [AsyncMongoClient(mongo_url), AsyncMongoClient(mongo_url)]
    try:
        stores = (MongoEventStore(clients[0][name]), MongoEventStore(clients[1][name]))
        await stores[0].ensure_indexes()
        await stores[1].ensure_indexes()
        yield stores
    finally:
        for client in clients:
            await client.close()


async def _wait_for_head(store: MongoEventStore, head: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    seen = await store.head_position()
    while seen < head and time.monotonic() < deadline:
        await store.notifier.wait_beyond(seen, 0.05)
        seen = await store.head_position()
    assert seen == head


async def test_racing_passes_without_lease_keep_positions_contiguous(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes
    streams = [f"s-{i}" for i in range(6)]
    written: list[str] = []
    writing = asyncio.gather(
        *(
            write_load((a, b)[w % 2], w, streams, commits=30, seconds=20, written=written)
            for w in range(6)
        )
    )

    async def keep_sequencing(store: MongoEventStore) -> None:
        while not writing.done():
            await store.sequence()
            await asyncio.sleep(0)

    await asyncio.gather(writing, *(keep_sequencing(s) for s in (a, b, a, b)))
    await asyncio.gather(a.sequence(), b.sequence())
    await a.sequence()
    events = await read_everything(a)
    assert_global_order(events)
    assert sorted(e.event_id for e in events) == sorted(written)
    assert await b.sequence() == 0


async def test_two_sequencers_with_lease_stamp_everything_once(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes
    leases = [MongoLeases(s.collection.database) for s in (a, b)]
    sequencers = [
        Sequencer(store, lease, lease_ttl=2.0, poll_interval=0.02, owner=f"p{i}")
        for i, (store, lease) in enumerate(zip((a, b), leases, strict=True))
    ]
    tasks = [asyncio.create_task(s.run()) for s in sequencers]
    try:
        written: list[str] = []
        streams = [f"s-{i}" for i in range(5)]
        for phase in range(2):
            await asyncio.gather(
                *(
                    write_load(
                        (a, b)[w % 2],
                        w + 10 * phase,
                        streams,
                        commits=20,
                        seconds=20,
                        written=written,
                    )
                    for w in range(4)
                )
            )
            await _wait_for_head(a, len(written))
            if phase == 0:
                holder = await leases[0].holder("sequencer")
                assert holder is not None
                # Stop whoever holds the lease: the other one must take over.
                stopped = 0 if holder.owner == "p0" else 1
                sequencers[stopped].stop()
                await asyncio.wait_for(tasks[stopped], 10)
                before = sequencers[1 - stopped].stamped
        events = await read_everything(b)
        assert_global_order(events)
        assert sorted(e.event_id for e in events) == sorted(written)
        assert sequencers[1 - stopped].stamped > before
    finally:
        for sequencer in sequencers:
            sequencer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_append_wakes_the_sequencer_without_polling(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes
    leases = MongoLeases(a.collection.database)
    owner = Sequencer(a, leases, poll_interval=60.0, owner="holder")
    watcher = Sequencer(b, MongoLeases(b.collection.database), poll_interval=0.02, owner="watch")
    tasks = [asyncio.create_task(owner.run())]
    try:
        await asyncio.sleep(0.1)  # let the owner take the lease first
        tasks.append(asyncio.create_task(watcher.run()))
        await a.append("s", "t", 0, [NewEvent("e1", "T", {}), NewEvent("e2", "T", {})])
        # Far less than the 60 s poll: only the in-process wake-up can explain it.
        assert await a.notifier.wait_beyond(0, 10.0) == 2
        # The other "process" only learns it by watching the head.
        assert await b.notifier.wait_beyond(0, 10.0) == 2
        assert watcher.stamped == 0
    finally:
        owner.stop()
        watcher.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert await leases.holder("sequencer") is None


class EventReads(monitoring.CommandListener):
    """The stream reads (``find`` by version) a client sends to ``events``."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        query = event.command.get("filter", {})
        if event.command_name == "find" and event.command.get("find") == "events":
            self.count += "version" in query

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_position_of_a_commit_appended_here_comes_from_the_sequencer_pass(
    mongo_url: str,
) -> None:
    reads = EventReads()
    client: Client = AsyncMongoClient(mongo_url, event_listeners=[reads])
    try:
        store = MongoEventStore(client[f"t_{uuid.uuid4().hex[:12]}"])
        await store.ensure_indexes()
        # A 60 s poll: only the wake-up on the append can explain a stamp in time.
        sequencer = Sequencer(store, MongoLeases(store.collection.database), poll_interval=60.0)
        task = asyncio.create_task(sequencer.run())
        try:
            await store.append("warm", "t", 0, [NewEvent("w", "T", {})])
            assert await store.notifier.wait_beyond(0, 10.0) == 1
            positions = []
            for n in range(1, 6):
                result = await store.append("s", "t", n - 1, [NewEvent(f"e{n}", "T", {})])
                positions.append(await store.position_of("s", result.version))
        finally:
            sequencer.stop()
            await asyncio.wait_for(task, 10)
        assert positions == [2, 3, 4, 5, 6]  # stamped, never null
        assert reads.count == 0  # and not one stream read to find them
    finally:
        await client.close()


async def test_position_of_gives_up_waiting_after_its_bound_and_reads_once(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, _ = two_processes
    a.position_wait = 0.2
    await a.sequence()  # a pass here: a's appends are expected to be stamped here
    result = await a.append("s", "t", 0, [NewEvent("e1", "T", {})])
    # No further pass comes: after the bound, one read finds the commit unstamped.
    assert await asyncio.wait_for(a.position_of("s", result.version), 10) is None
    waiting = asyncio.create_task(a.position_of("s", result.version))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await a.sequence() == 1
    assert await a.position_of("s", result.version) == 1


async def test_position_of_with_the_sequencer_in_another_process_reads_at_once(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes
    b.position_wait = 60.0  # waiting here would outlast the test's bound
    await a.sequence()
    result = await b.append("s", "t", 0, [NewEvent("e1", "T", {})])
    assert await asyncio.wait_for(b.position_of("s", result.version), 10) is None
    assert await a.sequence() == 1
    assert await b.position_of("s", result.version) == 1


async def test_a_stream_is_never_stamped_out_of_version_order(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, _ = two_processes
    await a.append("x", "t", 0, [NewEvent("x1", "T", {})])
    await a.append("x", "t", 1, [NewEvent("x2", "T", {}), NewEvent("x3", "T", {})])
    await a.append("y", "t", 0, [NewEvent("y1", "T", {})])
    # Skewed clocks in other processes: the later commit looks older than the first.
    await a.collection.update_one({"_id": "x:1"}, {"$set": {"pending": 3_000}})
    await a.collection.update_one({"_id": "x:2"}, {"$set": {"pending": 1_000}})
    await a.collection.update_one({"_id": "y:1"}, {"$set": {"pending": 2_000}})
    # The batch holds only x:2; x's lowest pending commit, x:1, is stamped in its place.
    assert await stamp_pending(a.collection, a.positions, batch=1) == (1, 1)
    assert await stamp_pending(a.collection, a.positions, batch=2) == (2, 4)
    events = await read_everything(a)
    assert [(e.stream_id, e.version) for e in events] == [("x", 1), ("x", 2), ("x", 3), ("y", 1)]


async def stamped_order(store: MongoEventStore) -> list[tuple[str, int]]:
    """(stream, version) of every stamped event in position order, global order checked."""
    events = await read_everything(store)
    assert_global_order(events)
    return [(e.stream_id, e.version) for e in events]


class BacklogReads(monitoring.CommandListener):
    """The backlog reads (``find`` on ``pending``) a client sends to ``events``."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "events":
            self.count += "pending" in event.command.get("filter", {})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def counted_pair(
    mongo_url: str,
) -> AsyncIterator[tuple[MongoEventStore, MongoEventStore, BacklogReads]]:
    """``here`` (its backlog reads counted, full passes 30 s apart) and another process."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    reads = BacklogReads()
    clients: list[Client] = [
        AsyncMongoClient(mongo_url, event_listeners=[reads]),
        AsyncMongoClient(mongo_url),
    ]
    try:
        here = MongoEventStore(clients[0][name], full_pass_every=30.0)
        there = MongoEventStore(clients[1][name])
        await here.ensure_indexes()
        yield here, there, reads
    finally:
        for client in clients:
            await client.close()


async def test_a_pass_claims_the_commits_appended_here_without_reading_the_backlog(
    counted_pair: tuple[MongoEventStore, MongoEventStore, BacklogReads],
) -> None:
    here, _, reads = counted_pair
    await here.append("x", "t", 0, [NewEvent("x1", "T", {})])
    assert await here.sequence() == 1
    assert reads.count == 1  # the first pass reads the backlog
    await here.append("x", "t", 1, [NewEvent("x2", "T", {}), NewEvent("x3", "T", {})])
    await here.append("y", "t", 0, [NewEvent("y1", "T", {})])  # a new stream
    assert await here.sequence() == 2
    assert reads.count == 1  # claimed from what this process appended
    assert await here.position_of("x", 3) == 3
    assert await here.position_of("y", 1) == 4
    assert await stamped_order(here) == [("x", 1), ("x", 2), ("x", 3), ("y", 1)]


async def test_another_process_s_commit_is_left_to_a_full_pass_never_passed_in_its_stream(
    counted_pair: tuple[MongoEventStore, MongoEventStore, BacklogReads],
) -> None:
    here, there, reads = counted_pair
    await here.append("x", "t", 0, [NewEvent("x1", "T", {})])
    await here.sequence()
    await there.append("f", "t", 0, [NewEvent("f1", "T", {})])  # pending, unknown here
    await here.append("x", "t", 1, [NewEvent("x2", "T", {})])
    assert await here.sequence() == 1  # a local pass: x2 only
    assert reads.count == 1
    assert await there.position_of("f", 1) is None  # still pending
    # A commit after f1, appended here: not the next commit as far as this process
    # knows, so the pass reads the backlog and stamps f1 before it.
    await here.append("f", "t", 1, [NewEvent("f2", "T", {})])
    assert await here.sequence() == 2
    assert reads.count == 2
    assert await stamped_order(here) == [("x", 1), ("x", 2), ("f", 1), ("f", 2)]


async def test_a_commit_claimed_by_another_pass_makes_the_next_pass_a_full_one(
    counted_pair: tuple[MongoEventStore, MongoEventStore, BacklogReads],
) -> None:
    here, there, reads = counted_pair
    await here.append("x", "t", 0, [NewEvent("x1", "T", {})])
    await here.sequence()
    await here.append("x", "t", 1, [NewEvent("x2", "T", {})])
    assert await there.sequence() == 1  # a stale twin claims this process's commit first
    assert await here.sequence() == 0  # refused by the unique commit index
    await here.append("y", "t", 0, [NewEvent("y1", "T", {})])
    assert await here.sequence() == 1
    assert reads.count == 2  # after a refusal the pass read the backlog again
    assert await stamped_order(here) == [("x", 1), ("x", 2), ("y", 1)]


async def test_another_process_s_commit_is_stamped_while_this_one_keeps_appending(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes  # full passes at the default pace
    sequencer = Sequencer(a, MongoLeases(a.collection.database), poll_interval=60.0)
    task = asyncio.create_task(sequencer.run())
    try:
        await a.append("warm", "t", 0, [NewEvent("w", "T", {})])
        assert await a.notifier.wait_beyond(0, 10.0) == 1
        await b.append("f", "t", 0, [NewEvent("f1", "T", {})])
        deadline, version = time.monotonic() + 10.0, 0
        while await b.position_of("f", 1) is None:  # only a's appends wake the sequencer
            assert time.monotonic() < deadline
            await a.append("busy", "t", version, [NewEvent(uuid.uuid4().hex, "T", {})])
            version += 1
            await asyncio.sleep(0.01)
    finally:
        sequencer.stop()
        await asyncio.wait_for(task, 10)


async def skewed_backlog(
    fast: MongoEventStore, normal: MongoEventStore, streams: list[str], behind: int
) -> None:
    """During a sequencer outage, a writer 8 s ahead commits to each hot stream, then
    ``behind`` commits per stream follow from a writer with a true clock."""
    versions = dict.fromkeys(streams, 0)

    async def commit(store: MongoEventStore, stream: str) -> None:
        await store.append(stream, "t", versions[stream], [NewEvent(uuid.uuid4().hex, "T", {})])
        versions[stream] += 1

    set_clock_skew(8)
    try:
        for stream in streams:
            await commit(fast, stream)
    finally:
        set_clock_skew(0)
    for _ in range(behind):
        for stream in streams:
            await commit(normal, stream)


async def test_a_writer_whose_clock_runs_ahead_cannot_stall_the_sequencer(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    """Every batch of oldest markers holds only commits that come after the skewed
    ones in their streams; positions must flow anyway (reduced: batches of 10)."""
    fast, normal = two_processes
    streams = [f"hot-{i}" for i in range(4)]
    await skewed_backlog(fast, normal, streams, behind=15)  # many batches deep
    passes = 0
    while await fast.collection.find_one({"pending": {"$gte": 0}}) is not None:
        made, _ = await stamp_pending(fast.collection, fast.positions, batch=10)
        assert made > 0, "a pass over a non-empty backlog stamped nothing"
        passes += 1
        assert passes < 64
    events = await read_everything(fast)
    assert len(events) == 4 * 16
    assert_global_order(events)
    for stream in streams:
        assert [e.version for e in events if e.stream_id == stream] == list(range(1, 17))


async def test_sequencer_runs_on_the_in_memory_store() -> None:
    store = InMemoryEventStore()
    sequencer = Sequencer(store, InMemoryLeases(), poll_interval=0.01)
    task = asyncio.create_task(sequencer.run())
    try:
        await store.append("s", "t", 0, [NewEvent("e", "T", {})])
        assert await sequencer.tick() == 0
        assert await store.notifier.wait_beyond(0, 1.0) == 1
    finally:
        sequencer.stop()
        await asyncio.wait_for(task, 5)


async def test_a_pass_that_died_after_claiming_is_finished_by_the_next(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    a, b = two_processes
    await a.append("x", "t", 0, [NewEvent("x1", "T", {}), NewEvent("x2", "T", {})])
    await a.append("y", "t", 0, [NewEvent("y1", "T", {})])
    # As if a sequencer claimed x:1 and crashed before copying the position.
    await a.positions.insert_one({"_id": 1, "position": 1, "commit": "x:1", "count": 2})
    assert await a.read_all() == []
    assert await b.sequence() == 1  # copies x:1 first, then claims y:1 at 3
    events = await read_everything(a)
    assert [(e.event_id, e.position) for e in events] == [("x1", 1), ("x2", 2), ("y1", 3)]


@pytest.mark.slow
async def test_a_stall_with_a_writer_8s_ahead_and_3600_commits_behind_it(
    two_processes: tuple[MongoEventStore, MongoEventStore],
) -> None:
    """4 hot streams, a writer 8 s ahead, thousands of commits pending
    after a sequencer outage; the sequencer loop (batches of 500) drains them all."""
    fast, normal = two_processes
    streams = [f"hot-{i}" for i in range(4)]
    await skewed_backlog(fast, normal, streams, behind=900)
    sequencer = Sequencer(normal, MongoLeases(normal.collection.database), poll_interval=0.02)
    task = asyncio.create_task(sequencer.run())
    try:
        await _wait_for_head(normal, 4 * 901, seconds=120)
    finally:
        sequencer.stop()
        await asyncio.wait_for(task, 30)
    assert_global_order(await read_everything(normal))
