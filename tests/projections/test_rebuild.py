"""Rebuilds: from 0 into a fresh collection, swapped in while consumers keep running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from projections.accounts import AccountsView
from projections.checkpoints import StatusReporter, rebuild_lease_name
from projections.consumer import EventHandler
from projections.projector import ConsumerDeps
from projections.rebuild import Rebuilder, RebuildError
from store.memory import InMemoryLeases
from store.protocol import RecordedEvent
from tests.projections.mongo_world import mongo_world
from tests.wiring import (
    EVENTS,
    FAST,
    PROJECTORS,
    READ_SIDES,
    World,
    dump,
    memory_world,
    rebuilt,
    settle,
)


async def workload(world: World) -> list[str]:
    accounts = [await world.open_account(f"o{i % 3}", deposit=5_000) for i in range(6)]
    for i in range(12):
        await world.transfer(accounts[i % 6], accounts[(i + 1) % 6], 100 * (i + 1))
    await world.withdraw(accounts[0], 50)
    return accounts


class Watched:
    """Wraps a projector; calls ``on_batch`` before each batch (to look at readers)."""

    def __init__(self, inner: EventHandler, on_batch: object, *, pass_events: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.on_batch = on_batch
        self.pass_events = pass_events

    async def prepare(self) -> None:
        await self.inner.prepare()

    def accepts(self, event: RecordedEvent) -> bool:
        return True  # every batch reaches ``on_batch``

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        if self.pass_events:
            await self.on_batch(events)  # type: ignore[operator]
        else:
            await self.on_batch()  # type: ignore[operator]
        await self.inner.handle_batch(events)


def read_model_factories(world: World) -> dict[str, Callable[[str], EventHandler]]:
    """Each read model's projector factory, as the service builds them for rebuilds."""
    return READ_SIDES.factories(ConsumerDeps(world.documents, world.store, EVENTS))


def rebuilder(world: World, **factories_override: object) -> Rebuilder:
    factories = {
        **read_model_factories(world),
        **factories_override,
    }
    return Rebuilder(
        world.store,
        world.documents,
        world.checkpoints,
        world.leases,
        factories,  # type: ignore[arg-type]
        batch_size=10,
        lease_ttl=FAST.lease_ttl,
        drop_grace=0.0,
    )


async def test_rebuild_equals_incremental_and_consumers_continue_after_the_swap() -> None:
    world = memory_world()
    group = world.group()
    group.start()
    try:
        accounts = await workload(world)
        await settle(group, world.store)
        incremental = await dump(world.documents)
        runner = rebuilder(world)
        for name in PROJECTORS:
            result = await runner.rebuild(name)
            assert result.new_collection.startswith(f"{name}__r")
            assert result.position == await world.store.head_position()
        assert await dump(world.documents) == incremental
        assert not {n for n in world.documents.collection_names() if n in PROJECTORS}  # type: ignore[attr-defined]

        await world.deposit(accounts[1], 1)  # the live consumers write to the new collections
        await world.transfer(accounts[2], accounts[3], 7)
        await settle(group, world.store)
        assert await dump(world.documents) == await rebuilt(world.store)
    finally:
        await group.stop()


async def rebuild_reading(world: World, view: AccountsView, account_id: str) -> list[int]:
    """Rebuild ``accounts``, reading ``account_id`` through ``view`` after every batch.

    Returns the balances read; each read also checks the consumer reports ``rebuilding``.
    """
    seen: list[int] = []
    reporter = StatusReporter(world.store, world.checkpoints, world.leases, ["accounts"])

    async def look() -> None:
        record = await view.get(account_id)
        assert record is not None
        seen.append(record.balance)
        assert (await reporter.report())[0].state == "rebuilding"

    def watched(physical: str) -> EventHandler:
        inner = read_model_factories(world)["accounts"](physical)
        return Watched(inner, look)

    await rebuilder(world, accounts=watched).rebuild("accounts")
    return seen


async def test_readers_see_the_old_collection_until_the_swap() -> None:
    world = memory_world()
    group = world.group(names=("accounts",))
    group.start()
    view = AccountsView(world.documents)
    try:
        accounts = await workload(world)
        await settle(group, world.store)
        # Mark the live collection so readers can tell which one they read.
        await world.documents.set_fields("accounts", accounts[0], {"balance_minor": -1})
        seen = await rebuild_reading(world, view, accounts[0])
        after = await view.get(accounts[0])
        await world.deposit(accounts[0], 3)
        await settle(group, world.store)
        latest = await view.get(accounts[0])
    finally:
        await group.stop()
    assert seen
    assert set(seen) == {-1}
    assert after is not None
    assert after.balance > 0
    assert latest is not None
    assert latest.balance == after.balance + 3


async def test_one_rebuild_at_a_time_and_unknown_names_are_refused() -> None:
    world = memory_world()
    runner = rebuilder(world)
    with pytest.raises(RebuildError):
        await runner.rebuild("transfer_manager")
    await world.leases.acquire(rebuild_lease_name("ledger"), "someone-else", 60)
    with pytest.raises(RebuildError, match="already running"):
        await runner.rebuild("ledger")


async def test_a_rebuild_hands_a_slow_projector_fewer_larger_batches() -> None:
    """Reads run ahead while the projector writes; it gets all of them at once."""
    world = memory_world()
    await workload(world)
    sizes: list[int] = []

    def slow(physical: str) -> EventHandler:
        inner = read_model_factories(world)["accounts"](physical)

        async def write_slowly(events: Sequence[RecordedEvent]) -> None:
            sizes.append(len(events))
            await asyncio.sleep(0.02)

        return Watched(inner, write_slowly, pass_events=True)

    result = await rebuilder(world, accounts=slow).rebuild("accounts")
    assert sum(sizes) == result.events
    assert max(sizes) > 10  # more than one read batch (batch_size=10) in one hand-over
    assert len(sizes) < result.events / 10
    accounts = (await dump(world.documents, ("accounts",)))["accounts"]
    assert accounts == (await rebuilt(world.store))["accounts"]


async def test_rebuild_without_a_running_consumer_sets_its_checkpoint() -> None:
    world = memory_world()
    await world.open_account(deposit=10)
    result = await rebuilder(world).rebuild("ledger")
    assert result.events == 2
    assert (await world.checkpoints.load("ledger")).position == 2
    assert (await dump(world.documents))["ledger"][0]["total_balance"] == 10


async def test_rebuild_on_the_embedded_database(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    async with mongo_world(mongo_db) as world:
        group = world.group()
        group.start()
        try:
            accounts = [await world.open_account(f"o{i}", deposit=1_000) for i in range(3)]
            for i in range(4):
                await world.transfer(accounts[i % 3], accounts[(i + 1) % 3], 10 + i)
            await settle(group, world.store)
            incremental = await dump(world.documents)
            assert incremental == await rebuilt(world.store)
            runner = rebuilder(world)
            for name in PROJECTORS:
                await runner.rebuild(name)
            assert await dump(world.documents) == incremental
            await world.deposit(accounts[0], 5)
            await settle(group, world.store)
            assert await dump(world.documents) == await rebuilt(world.store)
            names = await mongo_db.list_collection_names()
            assert not set(PROJECTORS) & set(names)  # the old collections were dropped
        finally:
            await group.stop()


class ManualClock:
    """Epoch milliseconds that move only when told: the lease store's clock."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


async def test_a_rebuild_paused_past_the_consumer_lease_switches_nothing() -> None:
    """The rebuild holds the consumer's lease, stalls (as under SIGSTOP) past it, and a
    newer holder takes over meanwhile: the rebuild's switch is refused, the alias and
    the checkpoint stay as the newer holder has them."""
    world = memory_world()
    clock = ManualClock()
    world.leases = InMemoryLeases(clock_ms=clock)
    accounts = await workload(world)
    live = await world.leases.acquire("accounts", "live-consumer", 10)
    assert live is not None
    await world.checkpoints.fence("accounts", live.epoch, "live-consumer")
    inside, resume = asyncio.Event(), asyncio.Event()

    def stalling(physical: str) -> EventHandler:
        inner = read_model_factories(world)["accounts"](physical)

        async def on_batch() -> None:
            holder = await world.leases.holder("accounts")
            if holder is not None and holder.owner == "rebuild":
                inside.set()
                await resume.wait()

        return Watched(inner, on_batch)

    factories = {
        **read_model_factories(world),
        "accounts": stalling,
    }
    runner = Rebuilder(
        world.store,
        world.documents,
        world.checkpoints,
        world.leases,
        factories,
        batch_size=10,
        lease_ttl=10,
        drop_grace=0.0,
        owner="rebuild",
    )
    task = asyncio.create_task(runner.rebuild("accounts"))
    try:
        for _ in range(500):  # until it asks the live consumer to stand aside
            if (await world.checkpoints.load("accounts")).pause_until_ms is not None:
                break
            await asyncio.sleep(0.01)
        await world.deposit(accounts[0], 1)  # something for its catch-up under the lease
        clock.now += 11_000  # the live consumer's lease expires: the rebuild takes it
        await asyncio.wait_for(inside.wait(), 5)
        clock.now += 11_000  # the rebuild stalls past its lease; a newcomer takes over
        newer = await world.leases.acquire("accounts", "newcomer", 10)
        assert newer is not None
        await world.checkpoints.fence("accounts", newer.epoch, "newcomer")
        before = await world.checkpoints.load("accounts")
    finally:
        resume.set()
    with pytest.raises(RebuildError, match="lost"):
        await asyncio.wait_for(task, 10)
    assert await world.documents.resolve("accounts", fresh=True) == "accounts"
    after = await world.checkpoints.load("accounts")
    assert (after.position, after.target, after.epoch) == (before.position, None, newer.epoch)
