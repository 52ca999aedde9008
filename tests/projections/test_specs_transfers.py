"""Specs of the transfer read side: the ``transfers`` read model and the transfer
process manager (which commands each event makes it send, under which ids)."""

from __future__ import annotations

from typing import Any

import pytest

from application.service import CommandContext, ConcurrencyConflict
from domain.accounts import (
    AccountIsClosed,
    AccountOpened,
    CreditForTransfer,
    DebitForTransfer,
    InsufficientFunds,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    RefundForTransfer,
)
from domain.codec import EventRegistry
from domain.transfers import (
    CompleteTransfer,
    FailTransfer,
    InvalidTransferState,
    MarkTransferDebited,
    MarkTransferRefunded,
    ParkTransfer,
    RefuseTransferCredit,
    TransferCompleted,
    TransferCreditRefused,
    TransferDebited,
    TransferDebitedAfterFailure,
    TransferFailed,
    TransferParked,
    TransferRefunded,
    TransferRequested,
    TransferStepRetried,
)
from projections.consumer import EventHandler
from projections.transfers import TransferManager, TransfersProjector, derived_command_id
from store.protocol import EventStore, RecordedEvent
from tests.projections.gwt import (
    Deps,
    RecordingSender,
    at,
    given,
    newest_first,
    twice,
)

A, B, T = "acc-a", "acc-b", "tr-1"


def transfers(deps: Deps) -> EventHandler:
    return TransfersProjector(deps.documents, hub=deps.hub, registry=deps.registry)


def manager(sender: RecordingSender, store: EventStore, registry: EventRegistry) -> EventHandler:
    return TransferManager(sender, store, registry=registry)


def last(events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
    """Deliver only the newest event: the rest is history the handler may read."""
    return [events[-1:]]


# -- transfers ---------------------------------------------------------------------------


def transfer(version: int, **changes: Any) -> dict[str, Any]:
    """The ``transfers`` document of T (requested by event 1) after event ``version``."""
    return {
        "from_account_id": A,
        "to_account_id": B,
        "amount": 300,
        "currency": None,
        "status": "REQUESTED",
        "reason": None,
        "parked_step": None,
        "parked_attempt": 0,
        "requested_at": at(1),
        "version": version,
        "position": version,
        "updated_at": at(version),
        **changes,
    }


REQUESTED = TransferRequested(T, A, B, 300)
DEBITED = TransferDebited(T, "EUR")
PARKED = TransferParked(T, "credit", "credit refused: account_closed", 1)

CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((REQUESTED,), {}),
    ((REQUESTED, DEBITED), {"status": "DEBITED", "currency": "EUR"}),
    ((REQUESTED, DEBITED, TransferCompleted(T)), {"status": "COMPLETED", "currency": "EUR"}),
    ((REQUESTED, TransferFailed(T, "insufficient_funds")),
     {"status": "FAILED", "reason": "insufficient_funds"}),
    ((REQUESTED, DEBITED, TransferCreditRefused(T, "account_closed")),
     {"status": "DEBITED", "currency": "EUR", "reason": "account_closed"}),
    ((REQUESTED, DEBITED, TransferCreditRefused(T, "account_closed"), TransferRefunded(T),
      TransferFailed(T, "account_closed")),
     {"status": "FAILED", "currency": "EUR", "reason": "account_closed"}),
    ((REQUESTED, TransferFailed(T, "insufficient_funds"), TransferDebitedAfterFailure(T, "EUR")),
     {"status": "FAILED", "currency": "EUR", "reason": "insufficient_funds"}),
    ((REQUESTED, DEBITED, PARKED),
     {"status": "NEEDS_ATTENTION", "currency": "EUR", "reason": PARKED.reason,
      "parked_step": "credit", "parked_attempt": 1}),
    ((REQUESTED, DEBITED, PARKED, TransferStepRetried(T, "credit", 1, "DEBITED", None)),
     {"status": "DEBITED", "currency": "EUR", "parked_attempt": 1}),
    ((REQUESTED, DEBITED, PARKED, TransferCompleted(T)),
     {"status": "COMPLETED", "currency": "EUR", "reason": PARKED.reason, "parked_attempt": 1}),
]  # fmt: skip


@pytest.mark.parametrize(("history", "changes"), CASES)
async def test_each_transfer_event_sets_the_status_it_stands_for(
    history: tuple[Any, ...], changes: dict[str, Any]
) -> None:
    projected = await given(*history).project(transfers)
    projected.then_document("transfers", T, transfer(len(history), **changes))
    note = {"id": T, "version": len(history), "position": len(history)}
    projected.then_published((f"transfer:{T}", note))


async def test_account_events_are_not_transfers() -> None:
    projected = await given(MoneyDebitedForTransfer(A, T, 300, "EUR", 0)).project(transfers)
    projected.then_ids("transfers").then_published()


@pytest.mark.parametrize(("history", "changes"), CASES[-5:])
async def test_replay_and_redelivery_leave_the_transfers_unchanged(
    history: tuple[Any, ...], changes: dict[str, Any]
) -> None:
    projected = await given(*history, TransferRequested("tr-2", B, A, 5)).then_idempotent(transfers)
    projected.then_document("transfers", T, transfer(len(history), **changes))


async def test_an_older_transfer_event_after_a_newer_one_changes_nothing() -> None:
    history = (REQUESTED, DEBITED, TransferCompleted(T))
    projected = await given(*history).project(transfers, deliver=newest_first)
    doc = projected.documents("transfers")[T]
    assert (doc["status"], doc["version"]) == ("COMPLETED", 3)
    assert "requested_at" not in doc


# -- the transfer process manager ----------------------------------------------------------

OPENED = (AccountOpened(A, "ann", "EUR"), AccountOpened(B, "bob", "EUR"))
"""Events 1 and 2 of every manager history; the transfer is requested by event 3."""


def context(event: int, action: str) -> CommandContext:
    """The context of the manager's ``action`` in reaction to event number ``event``."""
    return CommandContext(
        command_id=derived_command_id(f"evt-{event}", action),
        correlation_id=T,
        causation_id=f"evt-{event}",
        actor="transfer-manager",
    )


async def test_a_requested_transfer_debits_the_source() -> None:
    reacted = await given(*OPENED, REQUESTED).react(manager)
    reacted.then_commands(DebitForTransfer(A, T, 300))
    assert [s.context for s in reacted.sent] == [context(3, "debit")]


async def test_a_refused_debit_fails_the_transfer_with_the_refusal_code() -> None:
    refusal = InsufficientFunds(A, 0, 300, "EUR")
    reacted = await given(*OPENED, REQUESTED).react(manager, refuse={DebitForTransfer: refusal})
    reacted.then_commands(DebitForTransfer(A, T, 300), FailTransfer(T, "insufficient_funds"))
    assert reacted.sent[1].context == context(3, "fail")


async def test_the_debit_marks_the_transfer_debited_in_the_source_currency() -> None:
    history = (*OPENED, REQUESTED, MoneyDebitedForTransfer(A, T, 300, "EUR", 0))
    reacted = await given(*history).react(manager, deliver=last)
    reacted.then_commands(MarkTransferDebited(T, "EUR"))
    assert reacted.sent[0].context == context(4, "mark-debited")


async def test_a_debited_transfer_credits_the_target() -> None:
    history = (*OPENED, REQUESTED, DEBITED)
    reacted = await given(*history).react(manager, deliver=last)
    reacted.then_commands(CreditForTransfer(B, T, 300, "EUR"))
    assert reacted.sent[0].context == context(4, "credit")


async def test_a_refused_credit_is_recorded_as_refused() -> None:
    history = (*OPENED, REQUESTED, DEBITED)
    refusal = AccountIsClosed(B)
    reacted = await given(*history).react(
        manager, deliver=last, refuse={CreditForTransfer: refusal}
    )
    reacted.then_commands(
        CreditForTransfer(B, T, 300, "EUR"), RefuseTransferCredit(T, "account_closed")
    )
    assert reacted.sent[1].context == context(4, "refuse-credit")


async def test_the_credit_completes_the_transfer() -> None:
    history = (*OPENED, REQUESTED, DEBITED, MoneyCreditedForTransfer(B, T, 300, 300))
    reacted = await given(*history).react(manager, deliver=last)
    reacted.then_commands(CompleteTransfer(T))


@pytest.mark.parametrize(
    "trigger",
    [TransferCreditRefused(T, "account_closed"), TransferDebitedAfterFailure(T, "EUR")],
)
async def test_a_refused_credit_or_a_late_debit_refunds_the_source(trigger: Any) -> None:
    reacted = await given(*OPENED, REQUESTED, trigger).react(manager, deliver=last)
    reacted.then_commands(RefundForTransfer(A, T, 300))
    assert reacted.sent[0].context == context(4, "refund")


async def test_the_refund_marks_the_transfer_refunded() -> None:
    history = (*OPENED, REQUESTED, MoneyRefundedForTransfer(A, T, 300, 300))
    reacted = await given(*history).react(manager, deliver=last)
    reacted.then_commands(MarkTransferRefunded(T))


async def test_a_retried_step_is_decided_again_under_ids_of_the_retry() -> None:
    history = (*OPENED, REQUESTED, DEBITED, PARKED,
               TransferStepRetried(T, "credit", 1, "DEBITED", None))  # fmt: skip
    reacted = await given(*history).react(manager, deliver=last)
    reacted.then_commands(CreditForTransfer(B, T, 300, "EUR"))
    assert reacted.sent[0].context == context(6, "credit")


async def test_a_step_refused_for_good_parks_the_transfer() -> None:
    history = (*OPENED, REQUESTED, DEBITED, MoneyCreditedForTransfer(B, T, 300, 300))
    refusal = InvalidTransferState(T, "FAILED", "complete")
    reacted = await given(*history).react(manager, deliver=last, refuse={CompleteTransfer: refusal})
    reason = f"complete refused: invalid_transfer_state: {refusal.message}"
    reacted.then_commands(CompleteTransfer(T), ParkTransfer(T, "complete", reason))
    assert reacted.sent[1].context == context(5, "park")


async def test_a_refused_park_stops_the_manager() -> None:
    history = (*OPENED, REQUESTED, MoneyRefundedForTransfer(A, T, 300, 300))
    refusal = InvalidTransferState(T, "FAILED", "mark refunded")
    with pytest.raises(InvalidTransferState):
        await given(*history).react(
            manager, deliver=last, refuse={MarkTransferRefunded: refusal, ParkTransfer: refusal}
        )


async def test_a_concurrency_conflict_is_not_a_rejection_and_propagates() -> None:
    conflict = ConcurrencyConflict(A, 1, 2)
    with pytest.raises(ConcurrencyConflict):
        await given(*OPENED, REQUESTED).react(manager, refuse={DebitForTransfer: conflict})


async def test_events_without_a_step_send_nothing() -> None:
    history = (*OPENED, MoneyDeposited(A, 500, 500), TransferCompleted(T), TransferFailed(T, "x"))
    reacted = await given(*history).react(manager)
    reacted.then_no_commands()


async def test_an_unknown_retried_step_is_an_error() -> None:
    history = (*OPENED, REQUESTED, TransferStepRetried(T, "teleport", 1, "DEBITED", None))
    with pytest.raises(LookupError, match="teleport"):
        await given(*history).react(manager, deliver=last)


async def test_redelivery_sends_the_same_commands_under_the_same_ids() -> None:
    history = (*OPENED, REQUESTED, DEBITED, MoneyCreditedForTransfer(B, T, 300, 300))
    once = await given(*history).react(manager)
    again = await given(*history).react(manager, deliver=twice)
    assert once.commands == [
        DebitForTransfer(A, T, 300), CreditForTransfer(B, T, 300, "EUR"), CompleteTransfer(T),
    ]  # fmt: skip
    # The write side answers a repeated id with its one outcome: money moves once.
    assert again.sent == once.sent + once.sent


async def test_one_transfer_reacts_in_event_order_within_a_batch() -> None:
    other = "tr-2"
    history = (*OPENED, REQUESTED, TransferRequested(other, B, A, 7), DEBITED,
               TransferCreditRefused(T, "account_closed"))  # fmt: skip
    reacted = await given(*history).react(manager)
    mine = [c for c in reacted.commands if c.transfer_id == T]
    assert mine == [
        DebitForTransfer(A, T, 300), CreditForTransfer(B, T, 300, "EUR"),
        RefundForTransfer(A, T, 300),
    ]  # fmt: skip
    assert [c for c in reacted.commands if c.transfer_id == other] == [
        DebitForTransfer(B, other, 7)
    ]
