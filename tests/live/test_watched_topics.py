"""``LiveReadModels`` keeps its own set of watched topics in step with the hub.

It answers "is this topic watched?" per feed event and per change note from
that set instead of asking the hub, so the set must follow every way a
``live:`` topic gains or loses its subscribers.
"""

from __future__ import annotations

from typing import Any

from projections.accounts import READ_SIDE as ACCOUNTS_READ
from projections.hub import Hub
from projections.live import LiveReadModels, ReadModelSource
from store.memory import InMemoryEventStore
from tests.live.helpers import append


async def nothing(key: str) -> Any:
    return None


async def no_checkpoint(consumer: str, needed: int) -> int:
    return 0


def read_models(hub: Hub) -> LiveReadModels:
    (account,) = ACCOUNTS_READ.live
    sources = {"account": ReadModelSource("accounts", nothing, account.route)}
    return LiveReadModels(hub, sources, no_checkpoint)


def watched(models: LiveReadModels, topic: str) -> bool:
    models._noted.pop(topic, None)
    models.hub.publish(topic, {"position": 7})  # a projector's change note
    return topic in models._noted


async def test_a_topic_is_watched_while_it_has_live_subscribers() -> None:
    hub = Hub()
    models = read_models(hub)
    first = hub.subscribe("live:account:a", latest_only=True)
    second = hub.subscribe("live:account:a", latest_only=True)
    hub.subscribe("account:b", latest_only=True)  # notes' own topic: not a live one
    assert watched(models, "account:a")
    assert not watched(models, "account:b")
    first.close()
    assert watched(models, "account:a")
    second.close()
    assert not watched(models, "account:a")


async def test_subscribers_from_before_construction_and_hub_close_count() -> None:
    hub = Hub()
    hub.subscribe("live:account:a", latest_only=True)
    models = read_models(hub)
    assert watched(models, "account:a")
    hub.close()
    assert not watched(models, "account:a")


async def test_feed_batches_note_work_for_watched_topics_only() -> None:
    store = InMemoryEventStore()
    await append(store, "account-1", 2)
    event = (await store.read_all())[-1]
    hub = Hub()
    models = read_models(hub)
    models.on_batch([event])
    assert models.pending_topics == 0
    assert models._seen == event.position
    hub.subscribe("live:account:account-1", latest_only=True)
    models.on_batch([event])
    assert models.pending_topics == 1
    assert models._pending["account:account-1"].position == event.position
