"""Specs of the ``ledger`` read model: totals per currency, guarded by position."""

from __future__ import annotations

from typing import Any

import pytest

from domain.accounts import (
    AccountClosed,
    AccountOpened,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
)
from domain.money import MAX_AMOUNT_MINOR
from domain.transfers import TransferRequested
from projections.consumer import EventHandler
from projections.ledger import LedgerProjector
from tests.projections.gwt import Deps, Stored, given, newest_first

A, B, U = "acc-a", "acc-b", "acc-u"


def ledger(deps: Deps) -> EventHandler:
    return LedgerProjector(deps.documents, deps.store, hub=deps.hub, registry=deps.registry)


def totals(
    position: int, *, open_accounts: int = 0, balance: Any = 0, deposited: Any = 0,
    withdrawn: Any = 0,
) -> dict[str, Any]:  # fmt: skip
    return {
        "open_accounts": open_accounts,
        "total_balance": balance,
        "total_deposited": deposited,
        "total_withdrawn": withdrawn,
        "position": position,
    }


HISTORY = (
    AccountOpened(A, "ann", "EUR"),  # 1
    AccountOpened(B, "bob", "EUR"),  # 2
    AccountOpened(U, "cid", "USD"),  # 3
    MoneyDeposited(A, 1_000, 1_000),  # 4
    MoneyWithdrawn(A, 100, 900),  # 5
    MoneyDebitedForTransfer(A, "tr-1", 300, "EUR", 600),  # 6: in flight, in no balance
    MoneyCreditedForTransfer(B, "tr-1", 300, 300),  # 7
    MoneyDebitedForTransfer(A, "tr-2", 50, "EUR", 550),  # 8
    MoneyRefundedForTransfer(A, "tr-2", 50, 600),  # 9
    MoneyDeposited(U, 70, 70),  # 10
    AccountClosed(B),  # 11 (a test history: the ledger does not check the balance)
)

EUR_AFTER = totals(11, open_accounts=1, balance=900, deposited=1_000, withdrawn=100)
USD_AFTER = totals(10, open_accounts=1, balance=70, deposited=70)


async def test_every_account_event_moves_its_currency_totals() -> None:
    projected = await given(*HISTORY).project(ledger)
    projected.then_document("ledger", "EUR", EUR_AFTER)
    projected.then_document("ledger", "USD", USD_AFTER)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, totals(1, open_accounts=1)),
        (4, totals(4, open_accounts=2, balance=1_000, deposited=1_000)),
        (5, totals(5, open_accounts=2, balance=900, deposited=1_000, withdrawn=100)),
        (6, totals(6, open_accounts=2, balance=600, deposited=1_000, withdrawn=100)),
        (7, totals(7, open_accounts=2, balance=900, deposited=1_000, withdrawn=100)),
        (9, totals(9, open_accounts=2, balance=900, deposited=1_000, withdrawn=100)),
    ],
)
async def test_each_event_type_changes_the_totals_it_concerns(
    count: int, expected: dict[str, Any]
) -> None:
    projected = await given(*HISTORY[:count]).project(ledger)
    projected.then_document("ledger", "EUR", expected)


async def test_one_note_per_currency_changed_in_a_batch() -> None:
    projected = await given(*HISTORY).project(ledger)
    projected.then_published(
        ("ledger", {"id": "EUR", "version": None, "position": 11}),
        ("ledger", {"id": "USD", "version": None, "position": 10}),
    )


async def test_the_currency_of_an_account_opened_in_an_earlier_batch_is_read_from_the_store() -> (
    None
):
    projected = await given(*HISTORY[:4]).project(ledger, deliver=lambda e: [e[3:]])
    projected.then_document("ledger", "EUR", totals(4, balance=1_000, deposited=1_000))


async def test_a_version_1_opening_counts_in_euros() -> None:
    old = Stored(A, "account", "AccountOpened", {"account_id": A, "owner": "ann"})
    projected = await given(old, MoneyDeposited(A, 5, 5)).project(ledger, deliver=lambda e: [e[1:]])
    projected.then_document("ledger", "EUR", totals(2, balance=5, deposited=5))


async def test_an_account_without_an_opening_is_an_error() -> None:
    with pytest.raises(LookupError, match=A):
        await given(MoneyDeposited(A, 5, 5)).project(ledger)


async def test_totals_past_the_int64_range_are_stored_as_their_digits() -> None:
    deposits = [MoneyDeposited(A, MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR) for _ in range(9_300)]
    total = MAX_AMOUNT_MINOR * len(deposits)
    projected = await given(AccountOpened(A, "ann", "EUR"), *deposits).project(ledger)
    assert total > 2**63
    projected.then_document(
        "ledger",
        "EUR",
        totals(len(deposits) + 1, open_accounts=1, balance=str(total), deposited=str(total)),
    )


async def test_transfer_events_are_not_ledger_events() -> None:
    projected = await given(TransferRequested("tr-1", A, B, 5)).project(ledger)
    projected.then_ids("ledger").then_published()


async def test_replay_and_redelivery_leave_the_totals_unchanged() -> None:
    projected = await given(*HISTORY).then_idempotent(ledger)
    projected.then_document("ledger", "EUR", EUR_AFTER)


async def test_events_at_or_below_the_stored_position_are_skipped() -> None:
    projected = await given(*HISTORY[:5]).project(ledger, deliver=newest_first)
    # The newest event (position 5) landed first; every older one is taken as included.
    projected.then_document("ledger", "EUR", totals(5, balance=-100, withdrawn=100))
