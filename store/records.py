"""Helpers shared by the store backends: clocks and commit flattening."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from store.protocol import CommitMetadata, NewEvent, RecordedEvent

#: The default commit metadata (no ids, no actor).
NO_METADATA = CommitMetadata()

#: A clock returning a timezone-aware UTC datetime (injectable for tests).
Clock = Callable[[], datetime]
#: A clock returning epoch milliseconds (leases).
MillisClock = Callable[[], int]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Every wall-clock reading the service makes goes through ``utc_now`` or
# ``epoch_ms`` and is shifted by this many milliseconds: 0 except in tests that
# run a process with a skewed clock (``CLOCK_SKEW_SECONDS``, refused in
# production). Nothing may depend on these clocks for correctness: leases are
# judged by the database's clock (``store.server_clock``) and global order by the
# sequencer, so a skewed process must still behave.
_skew_ms = 0


def set_clock_skew(seconds: float) -> None:
    """Shift this process's wall clock by ``seconds`` (tests of disagreeing clocks)."""
    global _skew_ms
    _skew_ms = round(seconds * 1000)


def clock_skew_ms() -> int:
    """The skew set by ``set_clock_skew`` (0 unless a test asked for one)."""
    return _skew_ms


def utc_now() -> datetime:
    """Now in UTC, truncated to milliseconds (what MongoDB can store)."""
    # The clock of every append: whole milliseconds after the epoch, skew applied.
    return _EPOCH + timedelta(milliseconds=time.time_ns() // 1_000_000 + _skew_ms)


def epoch_ms() -> int:
    """This process's wall clock in epoch milliseconds (skewed as ``utc_now``)."""
    return time.time_ns() // 1_000_000 + _skew_ms


def to_stored_time(moment: datetime) -> datetime:
    """``moment`` as tz-aware UTC truncated to ms; naive datetimes are taken as UTC.

    A moment already in that form (what ``utc_now`` returns) is returned as is.
    """
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    if moment.microsecond % 1000:
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment


def check_append(expected_version: int, events: Sequence[NewEvent]) -> None:
    """Reject arguments no backend accepts."""
    if not events:
        raise ValueError("an append needs at least one event")
    if expected_version < 0:
        raise ValueError(f"expected_version must be >= 0, got {expected_version}")


def flatten(
    *,
    stream_id: str,
    stream_type: str,
    first_version: int,
    events: Sequence[NewEvent],
    metadata: CommitMetadata,
    recorded_at: datetime,
    first_position: int | None,
) -> tuple[RecordedEvent, ...]:
    """The recorded events of one commit, versions and positions counted from its first.

    Each event's ``data`` is copied (shallowly), so a caller mutating its dict
    after the append cannot change history.
    """
    return tuple(
        [
            RecordedEvent(
                stream_id=stream_id,
                stream_type=stream_type,
                version=first_version + offset,
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                data=dict(event.data),
                metadata=metadata,
                recorded_at=recorded_at,
                position=None if first_position is None else first_position + offset,
            )
            for offset, event in enumerate(events)
        ]
    )
