"""Live read models fed by the real projectors and the Application Service (in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from application.ids import new_account_id
from application.service import ApplicationService
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import Deposit, OpenAccount
from domain.aggregate import deciders, rejection_types
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from projections.accounts import READ_SIDE as ACCOUNTS_READ
from projections.accounts import AccountsProjector
from projections.checkpoints import CheckpointStore, ProgressBoard
from projections.consumer import Consumer, ConsumerSettings
from projections.documents import InMemoryDocumentStore
from projections.hub import Hub
from projections.ledger import READ_SIDE as LEDGER_READ
from projections.ledger import LedgerProjector
from projections.live import Live, create_live
from projections.projector import ReadSides
from projections.transfers import READ_SIDE as TRANSFERS_READ
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from tests.live.helpers import take

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)
READ_SIDES = ReadSides((ACCOUNTS_READ, TRANSFERS_READ, LEDGER_READ))


@dataclass
class World:
    service: ApplicationService
    live: Live
    hub: Hub


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store, documents, hub, progress = (
        InMemoryEventStore(),
        InMemoryDocumentStore(),
        Hub(),
        ProgressBoard(),
    )
    checkpoints, leases = CheckpointStore(documents), InMemoryLeases()
    settings = ConsumerSettings(poll_interval=0.02)
    consumers = [
        Consumer(handler, store, checkpoints, leases, settings=settings, progress=progress)
        for handler in (
            AccountsProjector(documents, hub=hub, registry=EVENTS),
            LedgerProjector(documents, store, hub=hub, registry=EVENTS),
        )
    ]
    service = ApplicationService(
        store,
        InMemorySnapshotStore(),
        InMemoryCommandLog(store),
        EVENTS,
        DECIDERS,
        rejection_types=rejection_types(BANK),
    )
    live = create_live(
        store, checkpoints, READ_SIDES.live_sources(documents), hub=hub, progress=progress
    )
    for consumer in consumers:
        consumer.start()
    await live.start()
    try:
        yield World(service, live, hub)
    finally:
        await live.stop()
        for consumer in consumers:
            await consumer.stop()


async def test_account_subscribers_see_each_deposit_with_its_version(world: World) -> None:
    account_id = new_account_id()
    await world.service.handle(OpenAccount(account_id, "alice", "EUR"))
    changes = world.live.changes(f"account:{account_id}")
    change = (await take(changes, 1))[0]
    for _ in range(3):
        await world.service.handle(Deposit(account_id, 100))
    while change.version != 4:  # latest-only: intermediate versions may be skipped
        change = (await take(changes, 1))[0]
    assert change.document.balance == 300
    assert change.position == change.document.position == 4
    await changes.aclose()
    assert world.hub.subscriber_count() == 0


async def test_ledger_subscribers_see_totals(world: World) -> None:
    changes = world.live.changes("ledger")
    assert (await take(changes, 1))[0].document == []
    account_id = new_account_id()
    await world.service.handle(OpenAccount(account_id, "bob", "EUR"))
    await world.service.handle(Deposit(account_id, 250))
    totals = (await take(changes, 1))[0]
    while not totals.document or totals.document[0].total_balance != 250:
        totals = (await take(changes, 1))[0]
    assert totals.position == 2
    await changes.aclose()
