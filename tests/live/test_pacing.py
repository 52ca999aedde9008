"""projections.hub.Pacer: pauses grow with the subscriber count and the event loop's lateness."""

from __future__ import annotations

import asyncio

import pytest

from projections.hub import MIN_PAUSE, Hub, Pacer


def test_the_pause_grows_with_the_topic_subscribers() -> None:
    hub = Hub()
    pacer = Pacer(per_message=0.001)
    subscriptions = [hub.subscribe("live:t", latest_only=True) for _ in range(50)]
    assert pacer.pause_after(hub, "live:other") == 0.0  # nobody there
    assert pacer.pause_after(hub, "live:t") == pytest.approx(0.05)
    assert Pacer(per_message=MIN_PAUSE / 100).pause_after(hub, "live:t") == 0.0  # not worth it
    for subscription in subscriptions[1:]:
        subscription.close()
    assert Pacer().pause_after(hub, "live:t") == 0.0  # one subscriber: never paced
    subscriptions[0].close()


def test_late_pauses_lengthen_later_ones_up_to_a_bound_and_on_time_ones_shorten_them() -> None:
    hub = Hub()
    subscriptions = [hub.subscribe("live:t", latest_only=True) for _ in range(10)]
    pacer = Pacer(per_message=0.001, late=0.05, max_factor=4.0)
    for _ in range(100):
        pacer.observe(0.2)
    slower = pacer.pause_after(hub, "live:t")
    assert 0.01 < slower <= 0.04 + 1e-9
    for _ in range(100_000):
        pacer.observe(0.2)
    assert pacer.factor == 4.0
    for _ in range(100_000):
        pacer.observe(0.0)
    assert pacer.factor == 1.0
    assert pacer.pause_after(hub, "live:t") == pytest.approx(0.01)
    for subscription in subscriptions:
        subscription.close()


async def test_pace_returns_at_once_without_a_pause() -> None:
    await asyncio.wait_for(Pacer().pace(Hub(), "live:none"), timeout=5)


async def test_pace_pauses_and_observes() -> None:
    hub = Hub()
    subscriptions = [hub.subscribe("live:t", latest_only=True) for _ in range(5)]
    pacer = Pacer(per_message=0.001, late=10.0)
    pacer.factor = 2.0
    await asyncio.wait_for(pacer.pace(hub, "live:t"), timeout=5)
    assert pacer.factor < 2.0  # on time: pauses shortened
    for subscription in subscriptions:
        subscription.close()
