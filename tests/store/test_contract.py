"""One contract suite for every ``EventStore`` / ``SnapshotStore`` / ``CommandLog`` / ``Leases``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest

from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from store.protocol import (
    CommandRejection,
    CommitMetadata,
    ConcurrencyError,
    DuplicateCommandError,
    NewEvent,
    Snapshot,
)
from tests.store.backends import Backend, FakeClock

BACKENDS = ["memory", "pymongo", "motor"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "memory":
        store = InMemoryEventStore(clock=clock)
        yield Backend(
            "memory",
            store,
            InMemorySnapshotStore(),
            InMemoryCommandLog(store),
            InMemoryLeases(clock_ms=clock.millis),
            clock,
        )
        return
    from tests.store.mongo_backends import mongo_backend

    async with mongo_backend(request, request.param, clock) as made:
        yield made


def ev(n: int, kind: str = "Happened", **data: object) -> NewEvent:
    return NewEvent(event_id=f"e-{n}", type=kind, data={"n": n, **data})


# --- append and read -------------------------------------------------------------------------


async def test_append_creates_stream_and_reads_back(backend: Backend) -> None:
    meta = CommitMetadata(command_id="c1", correlation_id="k", causation_id="x", actor="alice")
    result = await backend.store.append("s-1", "thing", 0, [ev(1), ev(2)], meta)
    assert (result.stream_id, result.version) == ("s-1", 2)
    assert [e.version for e in result.events] == [1, 2]
    events = await backend.store.read_stream("s-1")
    assert [(e.version, e.event_id, e.type, e.data) for e in events] == [
        (1, "e-1", "Happened", {"n": 1}),
        (2, "e-2", "Happened", {"n": 2}),
    ]
    first = events[0]
    assert first.stream_type == "thing"
    assert first.metadata == meta
    assert first.recorded_at == backend.clock.now
    assert first.recorded_at.tzinfo is not None
    assert first.recorded_at.utcoffset() == timedelta(0)
    assert result.events[0].recorded_at == first.recorded_at


async def test_a_commits_traceparent_reads_back_and_older_commits_have_none(
    backend: Backend,
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await backend.store.append("s-1", "thing", 0, [ev(1)], CommitMetadata(command_id="c1"))
    traced = CommitMetadata(command_id="c2", traceparent=traceparent)
    await backend.store.append("s-1", "thing", 1, [ev(2), ev(3)], traced)
    await backend.store.sequence()
    for events in (await backend.store.read_stream("s-1"), await backend.store.read_all(0)):
        assert [e.metadata.traceparent for e in events] == [None, traceparent, traceparent]
    found = await backend.store.find_command("c2")
    assert found is not None
    assert found.events[0].metadata == traced


async def test_data_round_trips_plain_values(backend: Backend) -> None:
    data = {"s": "zürich ✓", "i": 10**15, "neg": -5, "b": True, "none": None, "l": [1, "a"]}
    nested = {"inner": {"k": [{"x": 1}]}, **data}
    await backend.store.append("s-1", "thing", 0, [NewEvent("e", "T", nested, schema_version=3)])
    (event,) = await backend.store.read_stream("s-1")
    assert event.data == nested
    assert event.schema_version == 3


async def test_versions_and_ranges(backend: Backend) -> None:
    store = backend.store
    assert await store.stream_version("s-1") == 0
    assert await store.read_stream("s-1") == []
    await store.append("s-1", "thing", 0, [ev(1)])
    await store.append("s-1", "thing", 1, [ev(2), ev(3), ev(4)])
    await store.append("s-1", "thing", 4, [ev(5)])
    assert await store.stream_version("s-1") == 5
    assert [e.version for e in await store.read_stream("s-1", 3)] == [3, 4, 5]
    assert [e.version for e in await store.read_stream("s-1", 2, 3)] == [2, 3]
    assert [e.version for e in await store.read_stream("s-1", 5)] == [5]
    assert [e.version for e in await store.read_stream("s-1", 1, 1)] == [1]
    assert await store.read_stream("s-1", 6) == []
    assert await store.stream_version("s-2") == 0


async def test_wrong_expected_version_raises_concurrency_error(backend: Backend) -> None:
    store = backend.store
    await store.append("s-1", "thing", 0, [ev(1), ev(2)])
    for expected in (0, 1, 3):
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s-1", "thing", expected, [ev(9)])
        assert caught.value.stream_id == "s-1"
        assert caught.value.expected_version == expected
        assert caught.value.actual_version == 2
    assert [e.event_id for e in await store.read_stream("s-1")] == ["e-1", "e-2"]


async def test_empty_or_negative_append_is_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match="at least one"):
        await backend.store.append("s-1", "thing", 0, [])
    with pytest.raises(ValueError, match="expected_version"):
        await backend.store.append("s-1", "thing", -1, [ev(1)])
    assert await backend.store.stream_version("s-1") == 0


async def test_concurrent_writers_at_one_version_exactly_one_wins(backend: Backend) -> None:
    store = backend.store
    await store.append("s-1", "thing", 0, [ev(0)])
    attempts = [store.append("s-1", "thing", 1, [ev(i), ev(100 + i)]) for i in range(8)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in losers)
    events = await store.read_stream("s-1")
    assert [e.version for e in events] == [1, 2, 3]
    assert events[1].event_id == winners[0].events[0].event_id


async def test_multi_event_commit_is_all_or_nothing(backend: Backend) -> None:
    store = backend.store
    await store.append("s-1", "thing", 0, [ev(1), ev(2), ev(3)])
    with pytest.raises(ConcurrencyError):
        await store.append("s-1", "thing", 1, [ev(10), ev(11), ev(12), ev(13)])
    events = await store.read_stream("s-1")
    assert [e.event_id for e in events] == ["e-1", "e-2", "e-3"]


async def test_duplicate_command_id_is_refused_and_found(backend: Backend) -> None:
    store = backend.store
    meta = CommitMetadata(command_id="cmd-1")
    first = await store.append("s-1", "thing", 0, [ev(1), ev(2)], meta)
    with pytest.raises(DuplicateCommandError) as caught:
        await store.append("s-1", "thing", 2, [ev(3)], meta)
    assert caught.value.command_id == "cmd-1"
    with pytest.raises(DuplicateCommandError):
        await store.append("s-2", "thing", 0, [ev(3)], meta)
    # Same version as the first commit too: the command id decides.
    with pytest.raises(DuplicateCommandError):
        await store.append("s-1", "thing", 0, [ev(3)], meta)
    assert await store.stream_version("s-1") == 2
    assert await store.stream_version("s-2") == 0
    found = await store.find_command("cmd-1")
    assert found is not None
    assert (found.stream_id, found.version) == ("s-1", 2)
    assert [e.event_id for e in found.events] == [e.event_id for e in first.events]
    assert await store.find_command("cmd-unknown") is None


async def test_same_command_sent_concurrently_applies_once(backend: Backend) -> None:
    store = backend.store
    meta = CommitMetadata(command_id="cmd-x")
    tries = [store.append(f"s-{i}", "thing", 0, [ev(i)], meta) for i in range(6)]
    results = await asyncio.gather(*tries, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(
        isinstance(r, DuplicateCommandError) for r in results if isinstance(r, BaseException)
    )


async def test_commits_without_command_id_never_collide(backend: Backend) -> None:
    for i in range(3):
        await backend.store.append(f"s-{i}", "thing", 0, [ev(i)])
    assert [await backend.store.stream_version(f"s-{i}") for i in range(3)] == [1, 1, 1]


# --- global order ----------------------------------------------------------------------------


async def _three_streams(backend: Backend) -> None:
    store = backend.store
    await store.append("a", "thing", 0, [ev(1, "Opened"), ev(2, "Moved")])
    await store.append("b", "other", 0, [ev(3, "Opened")])
    await store.append("a", "thing", 2, [ev(4, "Moved"), ev(5, "Closed"), ev(6, "Moved")])
    await store.append("b", "other", 1, [ev(7, "Closed")])
    await store.sequence()


async def test_read_all_in_position_order_from_any_position(backend: Backend) -> None:
    await _three_streams(backend)
    store = backend.store
    events = await store.read_all()
    assert [e.position for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.event_id for e in events] == [f"e-{n}" for n in range(1, 8)]
    assert await store.head_position() == 7
    for after in range(8):
        tail = await store.read_all(after)
        assert [e.position for e in tail] == list(range(after + 1, 8))
    assert [e.position for e in await store.read_all(4, limit=2)] == [5, 6]
    assert [e.position for e in await store.read_all(0, limit=1)] == [1]
    assert await store.read_all(7) == []
    assert await store.read_all(0, limit=0) == []


async def test_read_all_pages_through_multi_event_commits_in_any_page_size(
    backend: Backend,
) -> None:
    await _three_streams(backend)
    store = backend.store
    for size in range(1, 9):
        seen: list[int] = []
        after = 0
        for _ in range(10):  # bounded: 7 events
            page = await store.read_all(after, limit=size)
            if not page:
                break
            assert len(page) <= size
            seen += [e.position or 0 for e in page]
            after = seen[-1]
        assert seen == list(range(1, 8)), size


async def test_read_all_filters_by_stream_and_type(backend: Backend) -> None:
    await _three_streams(backend)
    store = backend.store
    assert [e.position for e in await store.read_all(stream_id="a")] == [1, 2, 4, 5, 6]
    assert [e.position for e in await store.read_all(4, stream_id="a")] == [5, 6]
    assert [e.position for e in await store.read_all(types=["Opened"])] == [1, 3]
    moved_or_closed = await store.read_all(1, types=["Moved", "Closed"], limit=3)
    assert [e.position for e in moved_or_closed] == [2, 4, 5]
    assert [e.position for e in await store.read_all(stream_id="b", types=["Closed"])] == [7]
    assert await store.read_all(stream_id="zzz") == []
    assert await store.read_all(types=[]) == []


async def test_type_filtered_pages_skip_long_runs_of_other_types(backend: Backend) -> None:
    store = backend.store
    kinds = ["A", "A", "B", "A", "A", "A", "B", "A"]
    for version, kind in enumerate(kinds):
        await store.append("s", "t", version, [ev(version + 1, kind)])
    await store.sequence()
    assert [e.position for e in await store.read_all(types=["B"], limit=1)] == [3]
    assert [e.position for e in await store.read_all(3, types=["B"], limit=1)] == [7]
    assert [e.position for e in await store.read_all(types=["B"], limit=2)] == [3, 7]
    assert [e.position for e in await store.read_all(1, types=["A", "B"], limit=3)] == [2, 3, 4]
    assert await store.read_all(7, types=["B"], limit=1) == []


async def test_positions_show_in_stream_reads_once_sequenced(backend: Backend) -> None:
    await _three_streams(backend)
    by_stream = await backend.store.read_stream("a")
    assert [e.position for e in by_stream] == [1, 2, 4, 5, 6]
    assert await backend.store.sequence() == 0


async def test_position_of_an_event_once_it_is_sequenced(backend: Backend) -> None:
    store = backend.store
    await store.append("a", "thing", 0, [ev(1), ev(2)])
    await store.append("b", "thing", 0, [ev(3)])
    if store.needs_sequencer:  # no sequencer pass here yet: one read finds it unstamped
        assert await store.position_of("a", 2) is None
        await store.sequence()
    assert await store.position_of("a", 2) == 2
    assert await store.position_of("a", 1) == 1
    assert await store.position_of("b", 1) == 3
    assert await store.position_of("a", 3) is None
    assert await store.position_of("nobody", 1) is None


async def test_head_position_starts_at_zero(backend: Backend) -> None:
    assert await backend.store.head_position() == 0
    assert await backend.store.read_all() == []
    assert await backend.store.sequence() == 0


async def test_a_store_that_needs_a_sequencer_reports_its_backlog(backend: Backend) -> None:
    store = backend.store
    await store.append("a", "thing", 0, [ev(1)])
    await store.append("b", "thing", 0, [ev(2)])
    pending, oldest = await store.sequencing_backlog(10)
    if store.needs_sequencer:
        assert pending == 2
        assert oldest is not None
        assert await store.sequencing_backlog(1) == (1, oldest)  # counted up to the cap
        assert await store.sequence() == 2
    else:  # positions are stamped while appending
        assert store.backlog_drained
        assert await store.sequence() == 0
    assert await store.sequencing_backlog(10) == (0, None)
    assert await store.head_position() == 2


async def test_notifier_wakes_waiters_when_positions_are_stamped(backend: Backend) -> None:
    notifier = backend.store.notifier
    waiting = asyncio.create_task(notifier.wait_beyond(0, 5.0))
    await asyncio.sleep(0)
    await backend.store.append("a", "thing", 0, [ev(1), ev(2)])
    await backend.store.sequence()
    assert await asyncio.wait_for(waiting, 5.0) == 2
    assert await notifier.wait_beyond(2, 0.01) == 2


# --- time travel -----------------------------------------------------------------------------


async def test_version_at_a_moment(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    start = clock.now
    await store.append("s-1", "thing", 0, [ev(1), ev(2)])
    clock.advance(10)
    await store.append("s-1", "thing", 2, [ev(3)])
    clock.advance(10)
    await store.append("s-1", "thing", 3, [ev(4)])
    assert await store.version_at("s-1", start - timedelta(seconds=1)) == 0
    assert await store.version_at("s-1", start) == 2
    assert await store.version_at("s-1", start + timedelta(seconds=9)) == 2
    assert await store.version_at("s-1", start + timedelta(seconds=10)) == 3
    assert await store.version_at("s-1", start + timedelta(days=1)) == 4
    naive = (start + timedelta(seconds=15)).astimezone(UTC).replace(tzinfo=None)
    assert await store.version_at("s-1", naive) == 3
    assert await store.version_at("nope", start) == 0


# --- snapshots, command log, leases ----------------------------------------------------------


def snap(version: int, schema_version: int = 1) -> Snapshot:
    return Snapshot("s-1", "thing", version, schema_version, {"balance": version, "tags": ["x"]})


async def test_snapshots_latest_and_max_version(backend: Backend) -> None:
    snapshots = backend.snapshots
    assert await snapshots.latest("s-1") is None
    for version in (100, 300, 200):
        await snapshots.save(snap(version))
    await snapshots.save(Snapshot("s-2", "thing", 900, 1, {}))
    assert await snapshots.latest("s-1") == snap(300)
    assert await snapshots.latest("s-1", max_version=299) == snap(200)
    assert await snapshots.latest("s-1", max_version=100) == snap(100)
    assert await snapshots.latest("s-1", max_version=99) is None
    await snapshots.save(snap(300))
    await snapshots.save(snap(300, schema_version=2))
    assert await snapshots.latest("s-1") == snap(300, schema_version=2)


async def test_command_log_keeps_the_first_rejection(backend: Backend) -> None:
    log = backend.commands
    assert await log.find_outcome("c-1") is None
    first = CommandRejection("c-1", "s-1", "insufficient_funds", "no", {"balance": "1.00"}, "W:1")
    second = CommandRejection("c-1", "s-1", "other", "again", {}, "W:2")
    assert await log.record_rejection(first) == first
    assert await log.record_rejection(second) == first
    assert await log.find_outcome("c-1") == first
    results = await asyncio.gather(
        *(log.record_rejection(CommandRejection("c-2", "s", f"k{i}", "m", {})) for i in range(5))
    )
    assert len({r.code for r in results if isinstance(r, CommandRejection)}) == 1
    assert all(isinstance(r, CommandRejection) for r in results)


async def test_a_rejection_takes_the_command_id_from_any_later_commit(backend: Backend) -> None:
    store, log = backend.store, backend.commands
    await store.append("s-1", "thing", 0, [ev(1)])
    rejected = CommandRejection("c-r", "s-1", "no_way", "refused", {"n": 1}, "Do:abc")
    assert await log.record_rejection(rejected) == rejected

    with pytest.raises(DuplicateCommandError):
        await store.append("s-1", "thing", 1, [ev(2)], CommitMetadata(command_id="c-r"))
    with pytest.raises(DuplicateCommandError):
        await store.append("s-9", "thing", 0, [ev(3)], CommitMetadata(command_id="c-r"))

    assert await store.stream_version("s-1") == 1
    assert await store.stream_version("s-9") == 0
    assert await store.find_command("c-r") is None  # a rejection is no commit
    assert await log.find_outcome("c-r") == rejected
    await store.sequence()
    assert [e.event_id for e in await store.read_all(0)] == ["e-1"]  # never sequenced
    assert await store.head_position() == 1
    assert [e.event_id for e in await store.read_stream("s-1")] == ["e-1"]


async def test_a_commit_is_the_outcome_a_later_rejection_gets_back(backend: Backend) -> None:
    store, log = backend.store, backend.commands
    meta = CommitMetadata(command_id="c-w", fingerprint="Do:f00")
    commit = await store.append("s-1", "thing", 0, [ev(1)], meta)

    stored = await log.record_rejection(CommandRejection("c-w", "s-1", "late", "m", {}, "Do:f00"))

    assert stored == commit
    assert await log.find_outcome("c-w") == commit
    found = await store.find_command("c-w")
    assert found is not None
    assert found.events[0].metadata.fingerprint == "Do:f00"


async def test_one_outcome_when_a_paused_copy_writes_after_its_twin_decided(
    backend: Backend,
) -> None:
    """Two copies of one command id: A decided to commit and paused; B decided to reject.

    Whichever write lands first is the id's only outcome, in both orders, and
    the loser learns it from the store (never both a commit and a rejection).
    """
    store, log = backend.store, backend.commands
    await store.append("s-1", "thing", 0, [ev(1)])
    meta = CommitMetadata(command_id="c-late-commit", fingerprint="Do:1")
    # B (the successor) records its rejection while A is paused ...
    rejection = CommandRejection("c-late-commit", "s-1", "no", "m", {}, "Do:1")
    assert await log.record_rejection(rejection) == rejection
    # ... A resumes and writes its commit: refused, the rejection is the outcome.
    with pytest.raises(DuplicateCommandError):
        await store.append("s-1", "thing", 1, [ev(2)], meta)
    assert await log.find_outcome("c-late-commit") == rejection
    assert await store.stream_version("s-1") == 1

    # The other order: A's commit lands first, B's rejection gets the commit back.
    meta = CommitMetadata(command_id="c-late-reject", fingerprint="Do:2")
    commit = await store.append("s-1", "thing", 1, [ev(3)], meta)
    late = CommandRejection("c-late-reject", "s-1", "no", "m", {}, "Do:2")
    assert await log.record_rejection(late) == commit

    # Both at once, many times over: exactly one kind of outcome per id.
    for round_ in range(5):
        command_id = f"c-race-{round_}"
        version = await store.stream_version("s-1")
        appended, recorded = await asyncio.gather(
            store.append("s-1", "thing", version, [ev(10 + round_)], CommitMetadata(command_id)),
            log.record_rejection(CommandRejection(command_id, "s-1", "no", "m", {})),
            return_exceptions=True,
        )
        outcome = await log.find_outcome(command_id)
        if isinstance(appended, DuplicateCommandError):
            assert recorded == outcome
            assert isinstance(outcome, CommandRejection)
        else:
            assert recorded == appended == outcome


async def test_lease_acquire_renew_expire_takeover_release(backend: Backend) -> None:
    leases, clock = backend.leases, backend.clock
    assert await leases.clock_ms() == clock.millis()
    assert await leases.holder("seq") is None
    first = await leases.acquire("seq", "p1", 10)
    assert first is not None
    holder = await leases.holder("seq")
    assert holder == first
    assert (holder.owner, holder.live) == ("p1", True)
    assert holder.expires_at_ms == clock.millis() + 10_000
    assert await leases.acquire("seq", "p2", 10) is None
    clock.advance(5)
    renewed = await leases.renew(first, 10)
    assert renewed is not None
    assert (renewed.epoch, renewed.expires_at_ms) == (first.epoch, clock.millis() + 10_000)
    clock.advance(9)
    assert await leases.acquire("seq", "p2", 10) is None
    clock.advance(2)  # expired now
    expired = await leases.holder("seq")
    assert expired is not None
    assert not expired.live
    taken = await leases.acquire("seq", "p2", 10)  # takeover: a newer epoch
    assert taken is not None
    assert (taken.owner, taken.epoch) == ("p2", first.epoch + 1)
    assert await leases.holder("seq") == taken
    assert await leases.renew(renewed, 10) is None  # p1 lost it: no renewal
    assert await leases.acquire("seq", "p1", 10) is None
    await leases.release("seq", "p1")  # not the holder: no effect
    assert (await leases.holder("seq")) == taken
    await leases.release("seq", "p2")
    assert await leases.holder("seq") is None
    again = await leases.acquire("seq", "p1", 10)
    assert again is not None
    assert again.epoch == taken.epoch + 1  # a release keeps the epoch counting
    assert await leases.acquire("other", "p2", 10)


async def test_taking_a_lease_again_gives_a_new_epoch_and_fences_the_old_one(
    backend: Backend,
) -> None:
    leases = backend.leases
    first = await leases.acquire("seq", "p1", 10)
    assert first is not None
    again = await leases.acquire("seq", "p1", 10)  # a newcomer, even for the same owner
    assert again is not None
    assert again.epoch == first.epoch + 1
    assert await leases.renew(first, 10) is None
    assert await leases.renew(again, 10) is not None


async def test_a_refused_lease_leaves_other_leases_alone(backend: Backend) -> None:
    leases, clock = backend.leases, backend.clock
    assert await leases.acquire("old", "p1", 1)
    assert await leases.acquire("held", "p2", 60)
    clock.advance(5)  # "old" has expired, "held" has not
    assert not await leases.acquire("held", "p3", 10)
    old, held = await leases.holder("old"), await leases.holder("held")
    assert old is not None
    assert held is not None
    assert (old.owner, held.owner) == ("p1", "p2")
    assert await leases.acquire("old", "p3", 10)
    held_after = await leases.holder("held")
    assert held_after == held


async def test_lease_race_has_one_winner(backend: Backend) -> None:
    leases = backend.leases
    results = await asyncio.gather(*(leases.acquire("race", f"p{i}", 30) for i in range(6)))
    assert sum(result is not None for result in results) == 1
