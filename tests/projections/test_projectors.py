"""Projectors: exact document shapes, replay and redelivery leave the read models unchanged."""

from __future__ import annotations

from typing import Any

from projections.documents import InMemoryDocumentStore
from projections.projector import ConsumerDeps
from store.protocol import EventStore, RecordedEvent
from tests.wiring import EVENTS, READ_SIDES, World, dump, memory_world, rebuilt, settle


async def banking_day(world: World) -> dict[str, str]:
    """A small history touching every event type, with the consumers running."""
    ann = await world.open_account("ann", "EUR", deposit=10_000)
    bob = await world.open_account("bob", "EUR")
    usd = await world.open_account("cid", "USD", deposit=500)
    shut = await world.open_account("dee", "EUR")
    await world.close(shut)
    await world.withdraw(ann, 1_000)
    ok = await world.transfer(ann, bob, 2_500)
    to_closed = await world.transfer(ann, shut, 100)
    mismatch = await world.transfer(ann, usd, 100)
    too_much = await world.transfer(bob, ann, 1_000_000)
    return {
        "ann": ann,
        "bob": bob,
        "usd": usd,
        "shut": shut,
        "ok": ok,
        "to_closed": to_closed,
        "mismatch": mismatch,
        "too_much": too_much,
    }


async def run_day() -> tuple[World, dict[str, str]]:
    world = memory_world()
    group = world.group()
    group.start()
    try:
        ids = await banking_day(world)
        await settle(group, world.store)
    finally:
        await group.stop()
    return world, ids


async def test_documents_have_the_agreed_shapes() -> None:
    world, ids = await run_day()
    models = await dump(world.documents)
    accounts = {d["_id"]: d for d in models["accounts"]}
    ann = accounts[ids["ann"]]
    assert set(ann) == {
        "_id", "owner", "currency", "balance", "balance_minor", "status", "version",
        "position", "opened_at", "updated_at",
    }  # fmt: skip
    assert (ann["owner"], ann["currency"], ann["status"]) == ("ann", "EUR", "OPEN")
    # The balance as a decimal string, the exact int beside it.
    assert (ann["balance"], ann["balance_minor"]) == ("65.00", 10_000 - 1_000 - 2_500)
    assert (accounts[ids["bob"]]["balance"], accounts[ids["bob"]]["balance_minor"]) == (
        "25.00",
        2_500,
    )
    assert accounts[ids["shut"]]["status"] == "CLOSED"
    assert ann["opened_at"].endswith("Z")

    transfers = {d["_id"]: d for d in models["transfers"]}
    assert transfers[ids["ok"]]["status"] == "COMPLETED"
    assert transfers[ids["ok"]]["currency"] == "EUR"
    assert transfers[ids["to_closed"]]["status"] == "FAILED"
    assert transfers[ids["to_closed"]]["reason"] == "account_closed"
    assert transfers[ids["mismatch"]]["reason"] == "currency_mismatch"
    assert (transfers[ids["too_much"]]["status"], transfers[ids["too_much"]]["reason"]) == (
        "FAILED",
        "insufficient_funds",
    )
    assert transfers[ids["too_much"]]["currency"] is None
    assert set(transfers[ids["ok"]]) == {
        "_id", "from_account_id", "to_account_id", "amount", "currency", "status", "reason",
        "parked_step", "parked_attempt", "version", "position", "requested_at", "updated_at",
    }  # fmt: skip


async def test_statement_lists_every_movement_with_running_balance() -> None:
    world, ids = await run_day()
    statement = (await dump(world.documents))["account_statement"]
    lines = [d for d in statement if d["account_id"] == ids["ann"]]
    lines.sort(key=lambda d: d["version"])
    kinds = [(d["kind"], d["amount"], d["balance"]) for d in lines]
    assert kinds == [
        ("deposit", 10_000, 10_000),
        ("withdrawal", -1_000, 9_000),
        ("transfer_out", -2_500, 6_500),
        ("transfer_out", -100, 6_400),
        ("transfer_out", -100, 6_300),
        ("refund", 100, 6_400),
        ("refund", 100, 6_500),
    ]
    assert lines[0]["_id"] == f"{ids['ann']}:{lines[0]['version']}"
    assert lines[0]["transfer_id"] is None
    assert lines[2]["transfer_id"] == ids["ok"]


async def test_ledger_totals_per_currency() -> None:
    world, _ = await run_day()
    ledger = {d["_id"]: d for d in (await dump(world.documents))["ledger"]}
    eur = ledger["EUR"]
    assert eur["open_accounts"] == 2
    assert eur["total_deposited"] == 10_000
    assert eur["total_withdrawn"] == 1_000
    assert eur["total_balance"] == 9_000
    assert ledger["USD"]["total_balance"] == 500
    assert ledger["USD"]["open_accounts"] == 1


async def test_replaying_twice_gives_identical_collections() -> None:
    world, _ = await run_day()
    first = await rebuilt(world.store)
    second = await rebuilt(world.store, batch_size=7)
    assert first == second
    assert first == await dump(world.documents)


async def project(store: EventStore, batches: list[list[RecordedEvent]]) -> dict[str, Any]:
    documents = InMemoryDocumentStore()
    for name, factory in READ_SIDES.factories(ConsumerDeps(documents, store, EVENTS)).items():
        handler = factory(name)
        await handler.prepare()
        for batch in batches:
            await handler.handle_batch(batch)
    return await dump(documents)


async def test_redelivery_and_overlapping_batches_change_nothing() -> None:
    world, _ = await run_day()
    events = await world.store.read_all(0, 10_000)
    once = await project(world.store, [events])
    # Every event twice, in overlapping windows of different sizes, like a consumer
    # that crashed after writing and before moving its checkpoint, several times.
    windows = [events[i : i + 5] for i in range(0, len(events), 3)]
    again = await project(world.store, [events[:11], *windows, events, events[4:9]])
    assert again == once
