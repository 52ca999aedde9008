"""Live read-model changes: routed from the feed, gated by checkpoints, coalesced, cleaned up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from projections.feed import Feed
from projections.hub import Hub
from projections.live import Live
from projections.live_read_models import LiveReadModels
from projections.live_topics import ReadModelChange, ReadModelSource
from store.memory import InMemoryEventStore
from tests.live.helpers import append, take


@dataclass
class Documents:
    """A stand-in read side: documents by topic plus consumer checkpoints."""

    docs: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, int] = field(default_factory=dict)
    loads: int = 0

    def source(self, kind: str, consumer: str) -> ReadModelSource:
        async def load(key: str) -> Any:
            self.loads += 1
            return self.docs.get(f"{kind}:{key}" if key else kind)

        return ReadModelSource(consumer, load)

    async def checkpoint(self, consumer: str, needed: int) -> int:
        return self.checkpoints.get(consumer, 0)

    def project(self, topic: str, version: int, position: int, consumer: str) -> None:
        self.docs[topic] = {"_id": topic, "version": version, "position": position}
        self.checkpoints[consumer] = position


@pytest.fixture
def documents() -> Documents:
    return Documents()


@pytest.fixture
async def live(documents: Documents) -> AsyncIterator[Live]:
    store = InMemoryEventStore()
    hub = Hub()
    sources = {
        "account": documents.source("account", "accounts"),
        "transfer": documents.source("transfer", "transfers"),
        "ledger": documents.source("ledger", "ledger"),
    }
    read_models = LiveReadModels(hub, sources, documents.checkpoint, poll_interval=0.01)
    live = Live(hub, Feed(store, hub, notifier=store.notifier, poll_interval=0.01), read_models)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


async def test_subscriber_gets_the_current_document_then_each_change(
    live: Live, documents: Documents
) -> None:
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 1, 1, "accounts")
    changes = live.changes("account:account-a")
    [first] = await take(changes, 1)
    assert (first.version, first.position) == (1, 1)
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 2, 2, "accounts")
    [second] = await take(changes, 1)
    assert second == ReadModelChange("account:account-a", documents.docs[second.topic], 2, 2)
    await changes.aclose()


async def test_a_change_is_published_only_once_the_projector_passed_it(
    live: Live, documents: Documents
) -> None:
    changes = live.changes("account:account-a")
    [initial] = await take(changes, 1)
    assert initial.document is None
    await append(live.feed.store, "account-a")
    await asyncio.sleep(0.1)  # the projector has not run: nothing to send yet
    assert live.read_models.pending_topics == 1
    documents.project("account:account-a", 1, 1, "accounts")
    [change] = await take(changes, 1)
    assert change.position == 1
    assert live.read_models.pending_topics == 0
    await changes.aclose()


async def test_a_projector_note_in_this_process_wakes_the_change_at_once(
    live: Live, documents: Documents
) -> None:
    changes = live.changes("transfer:transfer-t")
    await take(changes, 1)
    await append(live.feed.store, "transfer-t")
    await asyncio.sleep(0.05)
    # The document is written but the checkpoint is not yet moved; the note says so.
    documents.docs["transfer:transfer-t"] = {"version": 1, "position": 1}
    live.hub.publish("transfer:transfer-t", {"id": "transfer-t", "version": 1, "position": 1})
    [change] = await take(changes, 1)
    assert (change.version, change.position) == (1, 1)
    await changes.aclose()


async def test_bursts_are_coalesced_and_slow_subscribers_get_the_latest(
    live: Live, documents: Documents
) -> None:
    changes = live.changes("account:account-a")
    await take(changes, 1)
    documents.loads = 0
    await append(live.feed.store, "account-a", 50)
    assert await live.feed.wait_for(50, within=5)
    documents.project("account:account-a", 50, 50, "accounts")
    [latest] = await take(changes, 1)
    assert latest.position == 50
    assert documents.loads <= 3
    await changes.aclose()


async def test_account_events_also_move_the_ledger(live: Live, documents: Documents) -> None:
    changes = live.changes("ledger")
    await take(changes, 1)
    await append(live.feed.store, "account-a")
    documents.project("ledger", 1, 1, "ledger")
    [change] = await take(changes, 1)
    assert change.position == 1
    await changes.aclose()


async def test_unwatched_topics_cost_nothing_and_closing_cleans_up(
    live: Live, documents: Documents
) -> None:
    watched = live.changes("account:account-a")
    await take(watched, 1)
    documents.loads = 0
    await append(live.feed.store, "account-b", 5)
    await append(live.feed.store, "transfer-t", 5)
    assert await live.feed.wait_for(10, within=5)
    await asyncio.sleep(0.05)
    assert documents.loads == 0
    assert live.read_models.pending_topics == 0
    await watched.aclose()
    assert live.hub.subscriber_count() == 0
    assert live.hub.topic_count() == 0


async def test_a_document_whose_projector_stalls_is_published_after_the_bound(
    documents: Documents,
) -> None:
    store = InMemoryEventStore()
    hub = Hub()
    read_models = LiveReadModels(
        hub,
        {"account": documents.source("account", "accounts")},
        documents.checkpoint,
        poll_interval=0.01,
        wait_timeout=0.1,
    )
    live = Live(hub, Feed(store, hub, notifier=store.notifier, poll_interval=0.01), read_models)
    await live.start()
    try:
        changes = live.changes("account:account-a")
        await take(changes, 1)
        await append(store, "account-a")
        documents.docs["account:account-a"] = {"version": 1, "position": 1}
        [change] = await take(changes, 1)  # the checkpoint never moved
        assert change.position == 1
        assert read_models.pending_topics == 0
        await changes.aclose()
    finally:
        await live.stop()


async def test_subscribers_arriving_together_share_one_read(
    live: Live, documents: Documents
) -> None:
    documents.docs["account:account-a"] = {"version": 3, "position": 9}
    streams = [live.changes("account:account-a") for _ in range(50)]
    firsts = await asyncio.gather(*(take(stream, 1) for stream in streams))
    assert {first[0].position for first in firsts} == {9}
    assert documents.loads == 1
    for stream in streams:
        await stream.aclose()
    assert live.hub.subscriber_count() == 0
