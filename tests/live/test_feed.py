"""The per-process feed: catch-up then live, exactly once at the seam; resume; overflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from projections.hub import Hub, SubscriberOverflow
from projections.live import Feed
from store.memory import InMemoryEventStore
from store.protocol import RecordedEvent
from tests.live.helpers import append, positions, take


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    store = InMemoryEventStore()
    feed = Feed(store, Hub(), notifier=store.notifier, batch_size=7, poll_interval=0.02)
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()
        feed.hub.close()


async def test_events_appended_during_catch_up_arrive_exactly_once_in_order(feed: Feed) -> None:
    await append(feed.store, "account-a", 40)
    stream = feed.events(0)
    received: list[RecordedEvent] = []
    # Every received event triggers another append, so commits land while the
    # subscriber is still catching up (7 per read) and at the seam to live.
    async with asyncio.timeout(10):
        while len(received) < 100:
            received.append(await anext(stream))
            if len(received) <= 60:
                await append(feed.store, "account-b")
    await stream.aclose()
    assert positions(received) == list(range(1, 101))
    assert feed.hub.subscriber_count() == 0


async def test_a_live_subscriber_sees_new_events_without_reading_history(feed: Feed) -> None:
    await append(feed.store, "account-a", 5)
    stream = feed.events(5)
    reader = asyncio.create_task(take(stream, 3))
    await asyncio.sleep(0.05)
    await append(feed.store, "account-a", 3)
    assert positions(await reader) == [6, 7, 8]
    await stream.aclose()


async def test_reconnecting_with_the_last_position_resumes_exactly(feed: Feed) -> None:
    await append(feed.store, "account-a", 30)
    first = feed.events(0)
    seen = await take(first, 12)
    await first.aclose()
    await append(feed.store, "account-a", 10)
    second = feed.events(seen[-1].position or 0)
    rest = await take(second, 28)
    await second.aclose()
    assert positions(seen + rest) == list(range(1, 41))


async def test_filters_by_stream_and_type(feed: Feed) -> None:
    await append(feed.store, "account-a", 3)
    await append(feed.store, "account-b", 3, type_="Other")
    by_stream = feed.events(0, stream_id="account-b")
    by_type = feed.events(0, types=["Ticked"])
    assert [e.stream_id for e in await take(by_stream, 3)] == ["account-b"] * 3
    assert positions(await take(by_type, 3)) == [1, 2, 3]
    await append(feed.store, "account-a", 1)
    await append(feed.store, "account-b", 1, type_="Other")
    assert positions(await take(by_stream, 1)) == [8]
    assert positions(await take(by_type, 1)) == [7]
    await by_stream.aclose()
    await by_type.aclose()
    assert feed.hub.subscriber_count() == 0


async def test_a_slow_subscriber_is_ended_with_the_position_to_resume_after(feed: Feed) -> None:
    stream = feed.events(0, maxsize=5)
    reader = asyncio.create_task(take(stream, 2))
    await asyncio.sleep(0.02)
    await append(feed.store, "account-a", 2)
    got = await reader
    # The subscriber stops reading while 50 more events arrive.
    await append(feed.store, "account-a", 50)
    assert await feed.wait_for(52, within=5)
    with pytest.raises(SubscriberOverflow) as failure:
        got += await take(stream, 100)
    resume_after = failure.value.resume_after
    assert resume_after is not None
    assert feed.hub.subscriber_count() == 0
    resumed = feed.events(resume_after)
    rest = await take(resumed, 52 - resume_after)
    await resumed.aclose()
    assert positions(rest) == list(range(resume_after + 1, 53))


async def test_the_feed_publishes_each_event_once_to_the_global_and_stream_topics(
    feed: Feed,
) -> None:
    everything = feed.hub.subscribe("events", latest_only=False, maxsize=100)
    one_stream = feed.hub.subscribe("events:account-b", latest_only=False, maxsize=100)
    await append(feed.store, "account-a", 2)
    await append(feed.store, "account-b", 2)
    assert positions(await take(everything, 4)) == [1, 2, 3, 4]
    assert positions(await take(one_stream, 2)) == [3, 4]
    everything.close()
    one_stream.close()


async def test_without_a_notifier_the_feed_polls() -> None:
    store = InMemoryEventStore()
    feed = Feed(store, Hub(), poll_interval=0.01)
    await feed.start()
    try:
        await append(store, "account-a", 3)
        assert await feed.wait_for(3, within=5)
    finally:
        await feed.stop()
