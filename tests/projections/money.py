"""Checks every transfer-manager test ends with: money conserved, read models equal a rebuild."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from domain.codec import stored_int
from domain.transfers import TRANSFER
from projections.consumer import ConsumerGroup
from projections.projector import payload
from store.protocol import EventStore
from tests.wiring import EVENTS, PROJECTORS, World, dump, rebuilt, settle

EVERYTHING = 10_000_000


async def check_money(world: World) -> dict[str, str]:
    """Assert that no money appeared, vanished or stayed half-way; return each transfer's status.

    From the event log alone: every account's balance is explained by its own
    events; the sum of balances equals deposits minus withdrawals; a completed
    transfer debited and credited its amount once each, never refunded; a
    failed one credited nothing and refunded every debit; no transfer is left
    anywhere else.
    """
    events = await world.store.read_all(0, EVERYTHING)
    external = 0
    balances: dict[str, int] = {}
    legs: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        if event.stream_type != "account" or event.type == "AccountOpened":
            continue
        data = payload(EVENTS, event)
        if event.type == "AccountClosed":
            continue
        amount = int(data["amount"])
        change = -amount if event.type in ("MoneyWithdrawn", "MoneyDebitedForTransfer") else amount
        assert stored_int(data["balance"]) == balances.get(event.stream_id, 0) + change
        balances[event.stream_id] = stored_int(data["balance"])
        if event.type == "MoneyDeposited":
            external += amount
        elif event.type == "MoneyWithdrawn":
            external -= amount
        else:
            legs[data["transfer_id"]][event.type] += amount
    assert sum(balances.values()) == external
    statuses: dict[str, str] = {}
    for transfer_id in {e.stream_id for e in events if e.stream_type == "transfer"}:
        state = (await world.service.load(TRANSFER, transfer_id)).state
        moved = legs[transfer_id]
        assert state.parked_step is None, (transfer_id, state)
        if state.status == "COMPLETED":
            assert moved == Counter(
                MoneyDebitedForTransfer=state.amount, MoneyCreditedForTransfer=state.amount
            ), (transfer_id, moved)
        else:
            assert state.status == "FAILED", (transfer_id, state)
            assert moved["MoneyCreditedForTransfer"] == 0, (transfer_id, moved)
            assert moved["MoneyDebitedForTransfer"] == moved["MoneyRefundedForTransfer"]
        statuses[transfer_id] = state.status
    return statuses


async def check_read_models(world: World, group: ConsumerGroup) -> dict[str, Any]:
    """Settle the projectors; assert the read models equal a rebuild and agree on money."""
    await settle(group, world.store)
    models = await dump(world.documents, PROJECTORS)
    assert models == await rebuilt(world.store)
    by_currency: Counter[str] = Counter()
    for account in models["accounts"]:
        by_currency[account["currency"]] += stored_int(account["balance_minor"])
    for totals in models["ledger"]:
        total = stored_int(totals["total_balance"])
        assert total == by_currency[totals["_id"]]
        deposited = stored_int(totals["total_deposited"])
        assert total == deposited - stored_int(totals["total_withdrawn"])
    return models


async def head(store: EventStore) -> int:
    await store.sequence()
    return await store.head_position()
