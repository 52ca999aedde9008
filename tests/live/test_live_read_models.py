"""Live read-model changes: routed from the feed, gated by checkpoints, coalesced, cleaned up."""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from projections.accounts import READ_SIDE as ACCOUNTS_READ
from projections.hub import Hub
from projections.ledger import READ_SIDE as LEDGER_READ
from projections.live import (
    Feed,
    Follower,
    Live,
    LiveReadModels,
    ReadModelChange,
    ReadModelSource,
    live_topic,
)
from projections.transfers import READ_SIDE as TRANSFERS_READ
from store.memory import InMemoryEventStore
from tests.live.helpers import append, eventually, take


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

        return ReadModelSource(consumer, load, ROUTES[kind])

    async def checkpoint(self, consumer: str, needed: int) -> int:
        return self.checkpoints.get(consumer, 0)

    def project(self, topic: str, version: int, position: int, consumer: str) -> None:
        self.docs[topic] = {"_id": topic, "version": version, "position": position}
        self.checkpoints[consumer] = position


@pytest.fixture
def documents() -> Documents:
    return Documents()


CONSUMERS = {"account": "accounts", "transfer": "transfers", "ledger": "ledger"}
ROUTES = {
    spec.kind: spec.route
    for side in (ACCOUNTS_READ, TRANSFERS_READ, LEDGER_READ)
    for spec in side.live
}
"""The bank's own routing: which topics of each kind an event changes."""


@contextlib.asynccontextmanager
async def started_live(
    documents: Documents, kinds: Iterable[str] = CONSUMERS, wait_timeout: float = 10.0
) -> AsyncIterator[Live]:
    """A running ``Live`` on an in-memory store reading ``documents``; stopped on exit."""
    store = InMemoryEventStore()
    hub = Hub()
    sources = {kind: documents.source(kind, CONSUMERS[kind]) for kind in kinds}
    read_models = LiveReadModels(
        hub, sources, documents.checkpoint, poll_interval=0.01, wait_timeout=wait_timeout
    )
    live = Live(hub, Feed(store, hub, notifier=store.notifier, poll_interval=0.01), read_models)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


@pytest.fixture
async def live(documents: Documents) -> AsyncIterator[Live]:
    async with started_live(documents) as running:
        yield running


@contextlib.asynccontextmanager
async def watching(
    live: Live, topic: str
) -> AsyncIterator[tuple[AsyncGenerator[ReadModelChange, None], ReadModelChange]]:
    """``topic``'s change stream and its first (current) change; closed on exit."""
    changes = live.changes(topic)
    try:
        [first] = await take(changes, 1)
        yield changes, first
    finally:
        await changes.aclose()


async def test_subscriber_gets_the_current_document_then_each_change(
    live: Live, documents: Documents
) -> None:
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 1, 1, "accounts")
    async with watching(live, "account:account-a") as (changes, first):
        assert (first.version, first.position) == (1, 1)
        await append(live.feed.store, "account-a")
        documents.project("account:account-a", 2, 2, "accounts")
        [second] = await take(changes, 1)
        assert second == ReadModelChange("account:account-a", documents.docs[second.topic], 2, 2)


async def test_a_change_is_published_only_once_the_projector_passed_it(
    live: Live, documents: Documents
) -> None:
    async with watching(live, "account:account-a") as (changes, initial):
        assert initial.document is None
        await append(live.feed.store, "account-a")
        await asyncio.sleep(0.1)  # the projector has not run: nothing to send yet
        assert live.read_models.pending_topics == 1
        documents.project("account:account-a", 1, 1, "accounts")
        [change] = await take(changes, 1)
        assert change.position == 1
        assert live.read_models.pending_topics == 0


async def test_the_first_subscriber_gets_a_document_projected_after_it_subscribed(
    live: Live, documents: Documents
) -> None:
    await append(live.feed.store, "account-a")
    assert await live.feed.wait_for(1, within=5)  # seen by the feed while nobody watched
    async with watching(live, "account:account-a") as (changes, first):
        assert first.document is None  # the projector has not written it yet
        documents.project("account:account-a", 1, 1, "accounts")
        [change] = await take(changes, 1)
        assert (change.version, change.position) == (1, 1)


async def test_a_projector_note_in_this_process_wakes_the_change_at_once(
    live: Live, documents: Documents
) -> None:
    async with watching(live, "transfer:transfer-t") as (changes, _):
        await append(live.feed.store, "transfer-t")
        await asyncio.sleep(0.05)
        # The document is written but the checkpoint is not yet moved; the note says so.
        documents.docs["transfer:transfer-t"] = {"version": 1, "position": 1}
        live.hub.publish("transfer:transfer-t", {"id": "transfer-t", "version": 1, "position": 1})
        [change] = await take(changes, 1)
        assert (change.version, change.position) == (1, 1)


async def test_bursts_are_coalesced_and_slow_subscribers_get_the_latest(
    live: Live, documents: Documents
) -> None:
    async with watching(live, "account:account-a") as (changes, _):
        documents.loads = 0
        await append(live.feed.store, "account-a", 50)
        assert await live.feed.wait_for(50, within=5)
        documents.project("account:account-a", 50, 50, "accounts")
        [latest] = await take(changes, 1)
        assert latest.position == 50
        assert documents.loads <= 3


async def test_account_events_also_move_the_ledger(live: Live, documents: Documents) -> None:
    async with watching(live, "ledger") as (changes, _):
        await append(live.feed.store, "account-a")
        documents.project("ledger", 1, 1, "ledger")
        [change] = await take(changes, 1)
        assert change.position == 1


async def test_unwatched_topics_cost_nothing_and_closing_cleans_up(
    live: Live, documents: Documents
) -> None:
    async with watching(live, "account:account-a"):
        documents.loads = 0
        await append(live.feed.store, "account-b", 5)
        await append(live.feed.store, "transfer-t", 5)
        assert await live.feed.wait_for(10, within=5)
        await asyncio.sleep(0.05)
        assert documents.loads == 0
        assert live.read_models.pending_topics == 0
    assert live.hub.subscriber_count() == 0
    assert live.hub.topic_count() == 0


async def test_a_document_whose_projector_stalls_is_published_after_the_bound(
    documents: Documents,
) -> None:
    async with (
        started_live(documents, ["account"], wait_timeout=0.1) as live,
        watching(live, "account:account-a") as (changes, _),
    ):
        await append(live.feed.store, "account-a")
        documents.docs["account:account-a"] = {"version": 1, "position": 1}
        [change] = await take(changes, 1)  # the checkpoint never moved
        assert change.position == 1
        assert live.read_models.pending_topics == 0


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


async def test_documents_skips_absent_documents_and_converts_each_present_one(
    live: Live, documents: Documents
) -> None:
    converted: list[int] = []

    def convert(document: Any) -> tuple[str, int]:
        converted.append(document["version"])
        return ("doc", document["version"])

    stream = live.documents("account:account-a", convert)
    try:
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        assert not first.done()  # the account's document is absent: nothing sent
        for version in (1, 2):
            await append(live.feed.store, "account-a")
            documents.project("account:account-a", version, version, "accounts")
            if version == 1:
                assert await asyncio.wait_for(first, 5) == ("doc", 1)
        assert await asyncio.wait_for(anext(stream), 5) == ("doc", 2)
        assert converted == [1, 2]
        # one generator per subscriber, not one wrapped around ``changes``
        assert isinstance(stream, types.AsyncGeneratorType)
        assert stream.ag_frame is not None
        assert stream.ag_frame.f_code.co_name == "_follow"
        assert live.hub.subscriber_count() == 1
    finally:
        await stream.aclose()
    assert live.hub.subscriber_count() == 0


def delivering(follower: Follower) -> bool:
    """Whether a task of ``follower`` exists (it should only while something is pending)."""
    return any(
        task.get_coro().__qualname__ == "Follower._deliver"  # type: ignore[union-attr]
        for task in asyncio.all_tasks()
    )


def as_doc(document: Any) -> tuple[str, int]:
    return ("doc", document["version"])


@dataclass
class Parking:
    """A ``park`` callback: keeps every follower offered, takes them when ``takes``."""

    takes: bool = True
    offered: list[Follower] = field(default_factory=list)

    def __call__(self, follower: Follower) -> bool:
        self.offered.append(follower)
        return self.takes


async def test_a_stream_is_parked_after_its_current_document_and_delivers_with_no_idle_task(
    live: Live, documents: Documents
) -> None:
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 1, 1, "accounts")
    parking = Parking()
    stream = live.documents("account:account-a", as_doc, park=parking)
    # given a subscriber that received the current document
    assert await take(stream, 1) == [("doc", 1)]
    # when it offers the stream to park: the generator ends, the follower holds the topic
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    [follower] = parking.offered
    assert follower.topic == "account:account-a"
    assert live.hub.subscriber_count() == 1
    sent: list[tuple[str, int]] = []

    async def send(payload: tuple[str, int]) -> None:
        sent.append(payload)

    async def end() -> None:
        raise AssertionError("the live service did not end")

    follower.start(send, end)
    assert not delivering(follower)
    # then each change is sent, and nothing runs for it in between
    for version in (2, 3):
        await append(live.feed.store, "account-a")
        documents.project("account:account-a", version, version, "accounts")
        await eventually(lambda v=version: sent[-1:] == [("doc", v)])  # type: ignore[misc]
        await eventually(lambda: not delivering(follower))
    follower.close()
    assert live.hub.subscriber_count() == 0
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 4, 4, "accounts")
    await asyncio.sleep(0.1)
    assert sent == [("doc", 2), ("doc", 3)]


async def test_a_stream_whose_park_is_refused_goes_on_as_a_generator(
    live: Live, documents: Documents
) -> None:
    await append(live.feed.store, "account-a")
    documents.project("account:account-a", 1, 1, "accounts")
    parking = Parking(takes=False)
    stream = live.documents("account:account-a", as_doc, park=parking)
    try:
        assert await take(stream, 1) == [("doc", 1)]
        pending = asyncio.ensure_future(anext(stream))
        await eventually(lambda: len(parking.offered) == 1)
        await append(live.feed.store, "account-a")
        documents.project("account:account-a", 2, 2, "accounts")
        assert await asyncio.wait_for(pending, 5) == ("doc", 2)
        assert len(parking.offered) == 1  # offered once only
    finally:
        await stream.aclose()
    assert live.hub.subscriber_count() == 0


async def test_a_slow_parked_subscriber_gets_the_newest_document_next(
    live: Live, documents: Documents
) -> None:
    documents.project("account:account-a", 1, 1, "accounts")
    await append(live.feed.store, "account-a")
    parking = Parking()
    stream = live.documents("account:account-a", as_doc, park=parking)
    assert await take(stream, 1) == [("doc", 1)]
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    gate = asyncio.Event()
    sent: list[tuple[str, int]] = []

    async def send(payload: tuple[str, int]) -> None:
        sent.append(payload)
        await gate.wait()  # a client that reads slowly

    async def end() -> None:
        pass

    [follower] = parking.offered
    follower.start(send, end)
    try:
        await append(live.feed.store, "account-a")
        documents.project("account:account-a", 2, 2, "accounts")
        await eventually(lambda: sent == [("doc", 2)])
        for version in (3, 4, 5):
            await append(live.feed.store, "account-a")
            documents.project("account:account-a", version, version, "accounts")
        await eventually(lambda: live.read_models._published["account:account-a"].version == 5)
        gate.set()
        await eventually(lambda: sent[-1:] == [("doc", 5)])
        assert sent == [("doc", 2), ("doc", 5)]
    finally:
        follower.close()


async def test_a_parked_stream_ends_with_the_live_service(documents: Documents) -> None:
    documents.project("account:account-a", 1, 1, "accounts")
    ended: list[str] = []
    async with started_live(documents) as live:
        parking = Parking()
        stream = live.documents("account:account-a", as_doc, park=parking)
        assert await take(stream, 1) == [("doc", 1)]
        with pytest.raises(StopAsyncIteration):
            await anext(stream)

        async def send(payload: tuple[str, int]) -> None:
            raise AssertionError("nothing changed")

        async def end() -> None:
            ended.append("end")

        parking.offered[0].start(send, end)
    await eventually(lambda: ended == ["end"])


async def test_a_follower_keeps_the_pause_due_after_the_streams_last_message() -> None:
    hub = Hub()
    subscription = hub.subscribe(live_topic("account:a"), latest_only=True)
    follower = Follower(hub, subscription, as_doc, last=1, pause=0.3)
    sent: list[tuple[str, int]] = []

    async def send(payload: tuple[str, int]) -> None:
        sent.append(payload)

    async def end() -> None:
        pass

    follower.start(send, end)
    try:
        for version in (2, 3):  # both within the pause: only the newest is sent, after it
            document = {"version": version, "position": version}
            hub.publish(
                live_topic("account:a"), ReadModelChange("account:a", document, version, version)
            )
            await asyncio.sleep(0.1)
        assert sent == []
        await eventually(lambda: sent == [("doc", 3)])
    finally:
        follower.close()
