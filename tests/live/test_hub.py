"""Hub semantics: latest-only, strict overflow with a resume position, clean-up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from projections.hub import Hub, SubscriberOverflow, Subscription


async def next_of(sub: Subscription) -> Any:
    return await asyncio.wait_for(anext(sub), 2)


def waiting(sub: Subscription) -> bool:
    """Whether a reader waits on ``sub`` (its future exists only then)."""
    return sub._waiter is not None


async def test_strict_subscriber_receives_every_message_in_order() -> None:
    hub = Hub()
    sub = hub.subscribe("events", latest_only=False, maxsize=10)
    for position in range(1, 6):
        hub.publish("events", {"position": position})
    received = [(await next_of(sub))["position"] for _ in range(5)]
    assert received == [1, 2, 3, 4, 5]
    sub.close()


async def test_latest_only_subscriber_keeps_only_the_newest_message() -> None:
    hub = Hub()
    sub = hub.subscribe("account:a", latest_only=True)
    for version in range(1, 51):
        hub.publish("account:a", {"version": version})
    assert sub.pending == 1
    assert (await next_of(sub)) == {"version": 50}
    assert sub.dropped == 49
    hub.publish("account:a", {"version": 51})
    assert (await next_of(sub)) == {"version": 51}
    sub.close()


async def test_overflowing_strict_subscriber_ends_with_the_position_to_resume_after() -> None:
    hub = Hub()
    sub = hub.subscribe("events", latest_only=False, maxsize=3)
    other = hub.subscribe("events", latest_only=False, maxsize=100)
    hub.publish("events", {"position": 1})
    assert (await next_of(sub))["position"] == 1
    for position in range(2, 10):
        hub.publish("events", {"position": position})
    # Detached at once: the hub holds only the healthy subscriber now.
    assert hub.subscriber_count("events") == 1
    assert hub.overflows == 1
    drained = [(await next_of(sub))["position"] for _ in range(3)]
    assert drained == [2, 3, 4]
    with pytest.raises(SubscriberOverflow) as failure:
        await next_of(sub)
    assert failure.value.resume_after == 4
    assert other.pending == 9
    other.close()
    assert hub.subscriber_count() == 0


async def test_overflow_before_anything_was_received_names_no_position() -> None:
    hub = Hub()
    sub = hub.subscribe("events", latest_only=False, maxsize=1)
    hub.publish("events", {"position": 7})
    hub.publish("events", {"position": 8})
    assert (await next_of(sub))["position"] == 7
    with pytest.raises(SubscriberOverflow) as failure:
        await next_of(sub)
    assert failure.value.resume_after == 7


async def test_a_waiting_reader_wakes_on_publish() -> None:
    hub = Hub()
    sub = hub.subscribe("ledger", latest_only=True)
    reader = asyncio.create_task(next_of(sub))
    await asyncio.sleep(0.01)
    hub.publish("ledger", "hello")
    assert await reader == "hello"
    sub.close()


async def test_close_ends_iteration_and_detaches() -> None:
    hub = Hub()
    sub = hub.subscribe("transfer:t", latest_only=True)
    reader = asyncio.create_task(anext(sub, "ended"))
    await asyncio.sleep(0.01)
    sub.close()
    assert await reader == "ended"
    sub.close()  # idempotent
    assert hub.subscriber_count() == 0
    assert hub.topic_count() == 0
    assert hub.publish("transfer:t", "nobody") == 0


async def test_hub_close_ends_all_subscriptions_and_forgets_topics() -> None:
    hub = Hub()
    subs = [hub.subscribe(f"account:{i % 3}", latest_only=True) for i in range(9)]
    subs.append(hub.subscribe("events", latest_only=False, maxsize=5))
    assert hub.subscriber_count() == 10
    assert hub.topic_count() == 4
    hub.close()
    assert hub.subscriber_count() == 0
    assert hub.topic_count() == 0
    for sub in subs:
        assert (await anext(sub, "ended")) == "ended"


async def test_topic_watchers_see_first_and_last_subscriber() -> None:
    hub = Hub()
    changes: list[tuple[str, bool]] = []
    hub.on_topic_change(lambda topic, watched: changes.append((topic, watched)))
    first = hub.subscribe("account:a", latest_only=True)
    second = hub.subscribe("account:a", latest_only=True)
    first.close()
    second.close()
    assert changes == [("account:a", True), ("account:a", False)]


async def test_a_subscriber_that_never_reads_stays_bounded() -> None:
    hub = Hub()
    latest = hub.subscribe("account:a", latest_only=True)
    strict = hub.subscribe("events", latest_only=False, maxsize=50)
    for position in range(1, 10_001):
        hub.publish("account:a", {"version": position})
        hub.publish("events", {"position": position})
    assert latest.pending == 1
    assert strict.pending == 50
    assert hub.subscriber_count() == 1  # the strict one was detached
    latest.close()
    strict.close()
    assert hub.subscriber_count() == 0


async def test_async_with_closes() -> None:
    hub = Hub()
    async with hub.subscribe("ledger", latest_only=True) as sub:
        assert hub.subscriber_count("ledger") == 1
        hub.publish("ledger", 1)
        assert await next_of(sub) == 1
    assert hub.subscriber_count() == 0


async def test_a_subscription_bound_to_a_task_ends_with_it() -> None:
    hub = Hub()

    async def reader() -> None:
        sub = hub.subscribe("account:a", latest_only=True, owner=asyncio.current_task())
        await anext(sub)  # abandoned here: never closed by its reader

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    assert hub.subscriber_count() == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert hub.subscriber_count() == 0

    done = asyncio.create_task(asyncio.sleep(0))
    await done
    assert hub.subscribe("ledger", latest_only=True, owner=done).closed
    assert hub.subscriber_count() == 0


async def test_closing_a_bound_subscription_releases_its_task() -> None:
    hub = Hub()
    owner = asyncio.create_task(asyncio.sleep(10))
    sub = hub.subscribe("ledger", latest_only=True, owner=owner)
    sub.close()
    owner.cancel()
    await asyncio.gather(owner, return_exceptions=True)
    assert sub.closed
    assert hub.subscriber_count() == 0


async def test_an_idle_subscription_holds_no_queue_and_no_waiter() -> None:
    hub = Hub()
    latest = hub.subscribe("account:a", latest_only=True)
    strict = hub.subscribe("events", latest_only=False, maxsize=5)
    for sub in (latest, strict):
        assert not hasattr(sub, "__dict__")
        assert sub._queue is None
        assert sub._waiter is None
    hub.publish("account:a", {"version": 1})
    assert latest._queue is None  # latest only: one slot, never a queue
    assert (await next_of(latest)) == {"version": 1}
    assert latest.pending == 0
    assert latest._waiter is None
    latest.close()
    strict.close()


async def test_a_reader_waiting_through_several_publishes_gets_the_latest_then_waits() -> None:
    hub = Hub()
    sub = hub.subscribe("account:a", latest_only=True)
    reader = asyncio.create_task(next_of(sub))
    await asyncio.sleep(0.01)
    assert waiting(sub)
    for version in (1, 2, 3):  # the reader has not run yet: the newest replaces the others
        hub.publish("account:a", {"version": version})
    assert await reader == {"version": 3}
    assert sub.dropped == 2
    assert not waiting(sub)
    second = asyncio.create_task(next_of(sub))
    await asyncio.sleep(0.01)
    assert not second.done()
    hub.publish("account:a", {"version": 4})
    assert await second == {"version": 4}
    sub.close()


async def test_a_strict_reader_waiting_wakes_in_order_and_then_on_overflow() -> None:
    hub = Hub()
    sub = hub.subscribe("events", latest_only=False, maxsize=2)
    reader = asyncio.create_task(next_of(sub))
    await asyncio.sleep(0.01)
    for position in (1, 2, 3):  # the third overflows the queue of two
        hub.publish("events", {"position": position})
    assert (await reader)["position"] == 1
    assert (await next_of(sub))["position"] == 2
    with pytest.raises(SubscriberOverflow) as failure:
        await next_of(sub)
    assert failure.value.resume_after == 2
    assert sub.closed
    assert sub._queue is None


async def test_a_cancelled_reader_loses_nothing() -> None:
    hub = Hub()
    sub = hub.subscribe("account:a", latest_only=True)
    reader = asyncio.create_task(anext(sub))
    await asyncio.sleep(0.01)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert sub._waiter is None
    hub.publish("account:a", {"version": 1})
    assert (await next_of(sub)) == {"version": 1}
    sub.close()


async def test_a_second_reader_while_one_waits_is_refused() -> None:
    hub = Hub()
    sub = hub.subscribe("ledger", latest_only=True)
    first = asyncio.create_task(anext(sub))
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="another reader"):
        await anext(sub)
    hub.publish("ledger", "hello")
    assert await first == "hello"
    sub.close()


async def test_hub_close_delivers_what_was_pending_then_wakes_a_waiting_reader() -> None:
    hub = Hub()
    strict = hub.subscribe("events", latest_only=False, maxsize=5)
    latest = hub.subscribe("account:a", latest_only=True)
    hub.publish("events", {"position": 1})
    hub.publish("account:a", {"version": 1})
    hub.close()
    assert (await next_of(strict))["position"] == 1
    assert (await next_of(latest)) == {"version": 1}
    assert (await anext(strict, "ended")) == "ended"
    waiting = hub.subscribe("ledger", latest_only=True)
    reader = asyncio.create_task(anext(waiting, "ended"))
    await asyncio.sleep(0.01)
    hub.close()
    assert await reader == "ended"


def test_a_notified_subscriber_is_called_back_and_reads_without_waiting() -> None:
    hub = Hub()
    sub = hub.subscribe("account:a", latest_only=True)
    calls: list[int] = []
    sub.notify(lambda: calls.append(sub.pending))
    with pytest.raises(LookupError):
        sub.take_nowait()
    hub.publish("account:a", {"version": 1})
    hub.publish("account:a", {"version": 2})
    assert calls == [1, 1]  # called back on each message, which is pending by then
    assert sub.take_nowait() == {"version": 2}
    with pytest.raises(LookupError):
        sub.take_nowait()
    hub.close()
    assert calls == [1, 1, 0]  # and when the hub ends it
    assert sub.closed


def test_closing_a_notified_subscriber_does_not_call_it_back() -> None:
    hub = Hub()
    sub = hub.subscribe("account:a", latest_only=True)
    calls: list[str] = []
    sub.notify(lambda: calls.append("called"))
    sub.close()
    hub.publish("account:a", {"version": 1})
    assert calls == []
    assert hub.subscriber_count() == 0


async def test_an_unbound_subscription_outlives_its_former_owner() -> None:
    hub = Hub()
    owner = asyncio.get_running_loop().create_future()
    kept = hub.subscribe("account:a", latest_only=True, owner=owner)
    bound = hub.subscribe("account:b", latest_only=True, owner=owner)
    kept.unbind()
    owner.set_result(None)
    await asyncio.sleep(0)  # done callbacks run on the loop
    assert bound.closed
    assert not kept.closed
    assert hub.subscriber_count() == 1
    kept.close()
