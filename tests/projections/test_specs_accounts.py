"""Specs of the account read models: ``accounts`` (one document per account) and
``account_statement`` (one line per money movement)."""

from __future__ import annotations

from typing import Any

from domain.accounts import (
    AccountClosed,
    AccountOpened,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
)
from domain.transfers import TransferRequested
from projections.accounts import AccountsProjector, StatementProjector
from projections.consumer import EventHandler
from tests.projections.gwt import Deps, Stored, at, given, newest_first

ACC = "acc-1"
T = "tr-1"


def accounts(deps: Deps) -> EventHandler:
    return AccountsProjector(deps.documents, hub=deps.hub, registry=deps.registry)


def statement(deps: Deps) -> EventHandler:
    return StatementProjector(deps.documents, hub=deps.hub, registry=deps.registry)


def account(
    balance: int, balance_text: str, version: int, *, status: str = "OPEN", currency: str = "EUR"
) -> dict[str, Any]:
    """The ``accounts`` document of ACC (owner ann, opened by event 1) after event ``version``."""
    return {
        "owner": "ann",
        "currency": currency,
        "balance": balance_text,
        "balance_minor": balance,
        "status": status,
        "version": version,
        "position": version,
        "opened_at": at(1),
        "updated_at": at(version),
    }


HISTORY = (
    AccountOpened(ACC, "ann", "EUR"),
    MoneyDeposited(ACC, 10_000, 10_000),
    MoneyWithdrawn(ACC, 1_250, 8_750),
    MoneyDebitedForTransfer(ACC, T, 3_000, "EUR", 5_750),
    MoneyRefundedForTransfer(ACC, T, 3_000, 8_750),
    MoneyCreditedForTransfer(ACC, "tr-2", 50, 8_800),
    AccountClosed(ACC),
)


# -- accounts ---------------------------------------------------------------------------


async def test_an_opened_account_has_no_money_and_is_open() -> None:
    projected = await given(AccountOpened(ACC, "ann", "EUR")).project(accounts)
    projected.then_document("accounts", ACC, account(0, "0.00", 1))
    projected.then_published(("account:acc-1", {"id": ACC, "version": 1, "position": 1}))


BALANCES = [
    (10_000, "100.00"),
    (8_750, "87.50"),
    (5_750, "57.50"),
    (8_750, "87.50"),
    (8_800, "88.00"),
]
"""The balance after events 2 to 6 of HISTORY."""


async def test_each_money_event_sets_the_balance_it_carries() -> None:
    for count, (minor, text) in enumerate(BALANCES, start=2):
        projected = await given(*HISTORY[:count]).project(accounts)
        projected.then_document("accounts", ACC, account(minor, text, count))


async def test_a_closed_account_keeps_its_balance() -> None:
    projected = await given(*HISTORY).project(accounts)
    projected.then_document("accounts", ACC, account(8_800, "88.00", 7, status="CLOSED"))


async def test_a_batch_writes_each_account_once_as_of_its_last_event() -> None:
    other = "acc-2"
    projected = await given(*HISTORY[:3], AccountOpened(other, "bob", "USD")).project(accounts)
    projected.then_ids("accounts", ACC, other)
    projected.then_published(
        ("account:acc-1", {"id": ACC, "version": 3, "position": 3}),
        ("account:acc-2", {"id": other, "version": 1, "position": 4}),
    )


async def test_a_version_1_opening_is_read_in_euros() -> None:
    old = Stored(ACC, "account", "AccountOpened", {"account_id": ACC, "owner": "ann"})
    projected = await given(old, MoneyDeposited(ACC, 5, 5)).project(accounts)
    projected.then_document("accounts", ACC, account(5, "0.05", 2))


async def test_a_balance_past_the_int64_range_is_stored_as_its_digits() -> None:
    huge = 2**63 + 7
    projected = await given(
        AccountOpened(ACC, "ann", "EUR"), MoneyRefundedForTransfer(ACC, T, 1, huge)
    ).project(accounts)
    doc = projected.documents("accounts")[ACC]
    assert (doc["balance_minor"], doc["balance"]) == (str(huge), "92233720368547758.15")


async def test_events_of_other_streams_are_ignored() -> None:
    projected = await given(TransferRequested(T, ACC, "acc-2", 100)).project(accounts)
    projected.then_ids("accounts").then_published()


async def test_replay_and_redelivery_leave_the_accounts_unchanged() -> None:
    projected = await given(*HISTORY, AccountOpened("acc-2", "bob", "USD")).then_idempotent(
        accounts
    )
    projected.then_document("accounts", ACC, account(8_800, "88.00", 7, status="CLOSED"))


async def test_an_older_event_delivered_after_a_newer_one_changes_nothing() -> None:
    projected = await given(*HISTORY).project(accounts, deliver=newest_first)
    # Only the newest event (delivered first) wrote: it carries the status, not the rest.
    doc = projected.documents("accounts")[ACC]
    assert (doc["status"], doc["version"], doc["updated_at"]) == ("CLOSED", 7, at(7))
    assert "balance" not in doc


# -- account_statement -------------------------------------------------------------------


def line(version: int, kind: str, amount: int, balance: int, transfer: str | None) -> Any:
    return (
        f"{ACC}:{version}",
        {
            "account_id": ACC,
            "version": version,
            "position": version,
            "kind": kind,
            "amount": amount,
            "balance": balance,
            "transfer_id": transfer,
            "recorded_at": at(version),
        },
    )


STATEMENT = [
    line(2, "deposit", 10_000, 10_000, None),
    line(3, "withdrawal", -1_250, 8_750, None),
    line(4, "transfer_out", -3_000, 5_750, T),
    line(5, "refund", 3_000, 8_750, T),
    line(6, "transfer_in", 50, 8_800, "tr-2"),
]


async def test_every_money_movement_is_one_signed_line_with_the_balance_after_it() -> None:
    projected = await given(*HISTORY).project(statement)
    for line_id, expected in STATEMENT:
        projected.then_document("account_statement", line_id, expected)
    # Opening and closing move no money.
    projected.then_ids("account_statement", *(line_id for line_id, _ in STATEMENT))
    notes = [{"id": i, "version": d["version"], "position": d["position"]} for i, d in STATEMENT]
    projected.then_published(*((f"statement:{ACC}", note) for note in notes))


async def test_a_line_with_a_balance_past_the_int64_range_stores_its_digits() -> None:
    huge = 2**63
    projected = await given(
        AccountOpened(ACC, "ann", "EUR"), MoneyRefundedForTransfer(ACC, T, 1, huge)
    ).project(statement)
    assert projected.documents("account_statement")[f"{ACC}:2"]["balance"] == str(huge)


async def test_replay_redelivery_and_disorder_leave_the_statement_unchanged() -> None:
    projected = await given(*HISTORY).then_idempotent(statement)
    backwards = await given(*HISTORY).project(statement, deliver=newest_first)
    assert backwards.collections == projected.collections
