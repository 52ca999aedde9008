"""The Transfer aggregate as a decider: ``TRANSFER`` (stream type "transfer").

The stream id is the transfer id. A process manager drives it:

    REQUESTED --MarkTransferDebited--> DEBITED --CompleteTransfer--> COMPLETED
    REQUESTED --FailTransfer (debit refused)--> FAILED
    DEBITED --RefuseTransferCredit--> DEBITED (credit_refused)
            --MarkTransferRefunded--> FAILED (TransferRefunded + TransferFailed, one commit)

Invariants: from != to; amount rules as for accounts; a transfer completes or
fails exactly once; a refund only follows a debit whose credit was refused;
nothing fails while money is held by a debit that was not refunded. A step
repeated after it took effect yields no events; an impossible step raises
``InvalidTransferState``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from domain.errors import (
    InvalidInput,
    InvalidTransferState,
    TransferAlreadyExists,
    TransferNotFound,
)
from domain.money import check_amount, parse_currency
from domain.transfer_messages import (
    CompleteTransfer,
    FailTransfer,
    MarkTransferDebited,
    MarkTransferRefunded,
    RefuseTransferCredit,
    RequestTransfer,
    TransferCommand,
    TransferCompleted,
    TransferCreditRefused,
    TransferDebited,
    TransferEvent,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)
from domain.validation import check_id, check_reason

__all__ = [
    "TRANSFER",
    "CompleteTransfer",
    "FailTransfer",
    "MarkTransferDebited",
    "MarkTransferRefunded",
    "RefuseTransferCredit",
    "RequestTransfer",
    "TransferCommand",
    "TransferCompleted",
    "TransferCreditRefused",
    "TransferDebited",
    "TransferDecider",
    "TransferEvent",
    "TransferFailed",
    "TransferRefunded",
    "TransferRequested",
    "TransferState",
    "TransferStatus",
]

TransferStatus = Literal["REQUESTED", "DEBITED", "COMPLETED", "FAILED"]
_STATUSES = ("REQUESTED", "DEBITED", "COMPLETED", "FAILED")
Events = list[TransferEvent]


@dataclasses.dataclass(frozen=True)
class TransferState:
    """``exists`` is false before ``TransferRequested``; ``amount`` is int minor units.

    ``currency`` is known once debited; ``reason`` once the credit was refused
    or the transfer failed.
    """

    exists: bool = False
    transfer_id: str = ""
    from_account_id: str = ""
    to_account_id: str = ""
    amount: int = 0
    currency: str | None = None
    status: TransferStatus = "REQUESTED"
    reason: str | None = None
    credit_refused: bool = False
    refunded: bool = False


def _require(state: TransferState, transfer_id: str) -> None:
    if not state.exists:
        raise TransferNotFound(transfer_id)


def _impossible(state: TransferState, action: str) -> InvalidTransferState:
    status = "CREDIT_REFUSED" if state.credit_refused and not state.refunded else state.status
    return InvalidTransferState(state.transfer_id, status, action)


# decide ---------------------------------------------------------------------


def _request(state: TransferState, cmd: RequestTransfer) -> Events:
    transfer_id = check_id(cmd.transfer_id, "transfer_id")
    source = check_id(cmd.from_account_id, "from_account_id")
    target = check_id(cmd.to_account_id, "to_account_id")
    if source == target:
        raise InvalidInput("to_account_id", "a transfer needs two different accounts", value=target)
    amount = check_amount(cmd.amount)
    if state.exists:
        raise TransferAlreadyExists(transfer_id)
    return [TransferRequested(transfer_id, source, target, amount)]


def _mark_debited(state: TransferState, cmd: MarkTransferDebited) -> Events:
    currency = parse_currency(cmd.currency)
    _require(state, cmd.transfer_id)
    if state.status == "REQUESTED":
        return [TransferDebited(state.transfer_id, currency)]
    if state.currency == currency:
        return []  # already debited: a replay
    raise _impossible(state, "mark debited")


def _refuse_credit(state: TransferState, cmd: RefuseTransferCredit) -> Events:
    reason = check_reason(cmd.reason)
    _require(state, cmd.transfer_id)
    if state.credit_refused:
        return []
    if state.status == "DEBITED":
        return [TransferCreditRefused(state.transfer_id, reason)]
    raise _impossible(state, "refuse credit")


def _mark_refunded(state: TransferState, cmd: MarkTransferRefunded) -> Events:
    _require(state, cmd.transfer_id)
    if state.refunded:
        return []
    if state.status == "DEBITED" and state.credit_refused:
        reason = state.reason or "credit refused"
        return [TransferRefunded(state.transfer_id), TransferFailed(state.transfer_id, reason)]
    raise _impossible(state, "mark refunded")


def _complete(state: TransferState, cmd: CompleteTransfer) -> Events:
    _require(state, cmd.transfer_id)
    if state.status == "COMPLETED":
        return []
    if state.status == "DEBITED" and not state.credit_refused:
        return [TransferCompleted(state.transfer_id)]
    raise _impossible(state, "complete")


def _fail(state: TransferState, cmd: FailTransfer) -> Events:
    reason = check_reason(cmd.reason)
    _require(state, cmd.transfer_id)
    if state.status == "FAILED":
        return []
    if state.status == "REQUESTED":
        return [TransferFailed(state.transfer_id, reason)]
    raise _impossible(state, "fail")


_DECIDE: dict[type, Callable[[TransferState, Any], Events]] = {
    RequestTransfer: _request,
    MarkTransferDebited: _mark_debited,
    RefuseTransferCredit: _refuse_credit,
    MarkTransferRefunded: _mark_refunded,
    CompleteTransfer: _complete,
    FailTransfer: _fail,
}


# evolve ---------------------------------------------------------------------


def _requested(state: TransferState, e: TransferRequested) -> TransferState:
    return TransferState(True, e.transfer_id, e.from_account_id, e.to_account_id, e.amount)


def _debited(state: TransferState, e: TransferDebited) -> TransferState:
    return dataclasses.replace(state, status="DEBITED", currency=e.currency)


def _credit_refused(state: TransferState, e: TransferCreditRefused) -> TransferState:
    return dataclasses.replace(state, credit_refused=True, reason=e.reason)


def _refunded(state: TransferState, e: TransferRefunded) -> TransferState:
    return dataclasses.replace(state, refunded=True)


def _completed(state: TransferState, e: TransferCompleted) -> TransferState:
    return dataclasses.replace(state, status="COMPLETED")


def _failed(state: TransferState, e: TransferFailed) -> TransferState:
    return dataclasses.replace(state, status="FAILED", reason=e.reason)


_EVOLVE: dict[type, Callable[[TransferState, Any], TransferState]] = {
    TransferRequested: _requested,
    TransferDebited: _debited,
    TransferCreditRefused: _credit_refused,
    TransferRefunded: _refunded,
    TransferCompleted: _completed,
    TransferFailed: _failed,
}


# snapshots ------------------------------------------------------------------


def _from_snapshot(data: Mapping[str, Any]) -> TransferState:
    fields = {f.name: data[f.name] for f in dataclasses.fields(TransferState)}
    if fields["status"] not in _STATUSES:
        raise ValueError(f"malformed transfer snapshot: status {fields['status']!r}")
    return TransferState(**fields)


class TransferDecider:
    """The Transfer aggregate; see the module docstring for its states and invariants."""

    stream_type: str = "transfer"
    snapshot_version: int = 1

    def stream_id(self, command: TransferCommand) -> str:
        return command.transfer_id

    def initial_state(self) -> TransferState:
        return TransferState()

    def evolve(self, state: TransferState, event: TransferEvent) -> TransferState:
        return _EVOLVE[type(event)](state, event)

    def decide(self, state: TransferState, command: TransferCommand) -> Sequence[TransferEvent]:
        handler = _DECIDE.get(type(command))
        if handler is None:
            raise TypeError(f"not a transfer command: {type(command).__name__}")
        return handler(state, command)

    def to_snapshot(self, state: TransferState) -> Mapping[str, Any]:
        return dataclasses.asdict(state)

    def from_snapshot(self, data: Mapping[str, Any]) -> TransferState:
        return _from_snapshot(data)


TRANSFER = TransferDecider()
