"""Stored times and the in-memory append: the details the backends' callers rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from store.memory import InMemoryEventStore
from store.protocol import CommitMetadata, NewEvent
from store.records import clock_skew_ms, epoch_ms, set_clock_skew, to_stored_time, utc_now

CET = timezone(timedelta(hours=1))


def test_utc_now_is_aware_utc_in_whole_milliseconds() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    after = datetime.now(UTC)

    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before - timedelta(milliseconds=1) < now <= after
    assert to_stored_time(now) == now


@pytest.mark.parametrize(
    ("moment", "stored"),
    [
        (datetime(2024, 5, 1, 12, 0, 0, 123456), datetime(2024, 5, 1, 12, 0, 0, 123000, UTC)),
        (datetime(2024, 5, 1, 12, 0, 0, 999999, CET), datetime(2024, 5, 1, 11, 0, 0, 999000, UTC)),
        (datetime(2024, 5, 1, 12, 0, 0, 5000, UTC), datetime(2024, 5, 1, 12, 0, 0, 5000, UTC)),
        (
            datetime(2024, 5, 1, 12, 0, 0, 7, timezone(timedelta(0))),
            datetime(2024, 5, 1, 12, 0, 0, 0, UTC),
        ),
    ],
)
def test_to_stored_time_is_utc_truncated_to_milliseconds(
    moment: datetime, stored: datetime
) -> None:
    result = to_stored_time(moment)

    assert result == stored
    assert result.tzinfo is UTC
    assert result.microsecond == stored.microsecond


async def test_history_keeps_its_own_copy_of_the_appended_data() -> None:
    store = InMemoryEventStore()
    data = {"amount": 5}

    result = await store.append("s-1", "account", 0, [NewEvent("e-1", "Paid", data)])
    data["amount"] = 6

    assert result.events[0].data == {"amount": 5}
    assert (await store.read_stream("s-1"))[0].data == {"amount": 5}


async def test_append_result_is_what_find_command_and_the_reads_return() -> None:
    store = InMemoryEventStore()
    await store.append("other", "account", 0, [NewEvent("e-0", "Paid", {})])
    events = [NewEvent("e-1", "Paid", {"n": 1}), NewEvent("e-2", "Paid", {"n": 2}, 3)]
    metadata = CommitMetadata(command_id="c-1", correlation_id="r-1", actor="ada")

    result = await store.append("s-1", "account", 0, events, metadata)

    assert (result.stream_id, result.version) == ("s-1", 2)
    assert [(e.version, e.position, e.schema_version) for e in result.events] == [
        (1, 2, 1),
        (2, 3, 3),
    ]
    assert all(e.metadata == metadata for e in result.events)
    assert result.events[0].recorded_at == result.events[1].recorded_at
    assert await store.find_command("c-1") == result
    assert await store.read_stream("s-1") == list(result.events)
    assert await store.read_all(stream_id="s-1") == list(result.events)
    assert await store.read_all(1, stream_id="s-1") == list(result.events)
    assert await store.read_all(2, stream_id="s-1") == [result.events[1]]
    assert await store.version_at("s-1", result.events[0].recorded_at) == 2


def test_the_clock_skew_shifts_every_wall_clock_reading() -> None:
    before_ms, before = epoch_ms(), utc_now()
    set_clock_skew(30)
    try:
        assert clock_skew_ms() == 30_000
        assert epoch_ms() - before_ms >= 30_000
        assert (utc_now() - before).total_seconds() >= 30
    finally:
        set_clock_skew(0)
    assert epoch_ms() - before_ms < 30_000
