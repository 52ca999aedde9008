"""The ``transfers`` read model: one document per transfer, as of its stream version.

``{_id: transfer_id, from_account_id, to_account_id, amount, currency|None,
status "REQUESTED"|"DEBITED"|"COMPLETED"|"FAILED"|"NEEDS_ATTENTION",
reason|None, parked_step|None, parked_attempt, version, position,
requested_at, updated_at}``. A refused credit keeps the status ``DEBITED``
with its ``reason`` until the refund fails the transfer. A parked transfer
(a step failed permanently) is ``NEEDS_ATTENTION`` with the failing
``parked_step`` and its ``reason``, until a retry or the workflow moving on
gives it its own status back; ``parked_attempt`` is the park a retry names.
Documents written before parking existed lack the parked fields: read as none.
"""

from __future__ import annotations

from typing import Any

from projections.projector import FieldsOf, StreamDocumentsProjector, iso
from store.protocol import RecordedEvent

NAME = "transfers"
NEEDS_ATTENTION = "NEEDS_ATTENTION"
STATUSES = frozenset({"REQUESTED", "DEBITED", "COMPLETED", "FAILED", NEEDS_ATTENTION})
_UNPARKED = {"parked_step": None}
INDEXES = [
    [("status", 1), ("requested_at", -1)],
    [("from_account_id", 1), ("requested_at", -1)],
    [("to_account_id", 1), ("requested_at", -1)],
    [("requested_at", -1)],
]


def _requested(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_account_id": data["from_account_id"],
        "to_account_id": data["to_account_id"],
        "amount": data["amount"],
        "currency": None,
        "status": "REQUESTED",
        "reason": None,
        "parked_step": None,
        "parked_attempt": 0,
        "requested_at": iso(event.recorded_at),
    }


# Every workflow event lifts a park (as the aggregate does), so each one sets
# the transfer's own status again.


def _debited(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "DEBITED", "currency": data["currency"], **_UNPARKED}


def _credit_refused(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "DEBITED", "reason": data["reason"], **_UNPARKED}


def _refunded(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    # Either half of a refund-and-fail commit, or the refund of a late debit of a
    # transfer that had already failed: the status is FAILED either way.
    return {"status": "FAILED", **_UNPARKED}


def _completed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "COMPLETED", **_UNPARKED}


def _failed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "FAILED", "reason": data["reason"], **_UNPARKED}


def _debited_after_failure(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "FAILED", "currency": data["currency"], **_UNPARKED}


def _parked(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": NEEDS_ATTENTION,
        "reason": data["reason"],
        "parked_step": data["step"],
        "parked_attempt": data["attempt"],
    }


def _retried(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": data["status"], "reason": data["reason"], **_UNPARKED}


FIELDS: dict[str, FieldsOf] = {
    "TransferRequested": _requested,
    "TransferDebited": _debited,
    "TransferCreditRefused": _credit_refused,
    "TransferRefunded": _refunded,
    "TransferCompleted": _completed,
    "TransferFailed": _failed,
    "TransferDebitedAfterFailure": _debited_after_failure,
    "TransferParked": _parked,
    "TransferStepRetried": _retried,
}


class TransfersProjector(StreamDocumentsProjector):
    """Projects transfer events into ``transfers`` (or the fixed ``physical`` collection)."""

    name = NAME
    indexes = INDEXES
    stream_type = "transfer"
    fields = FIELDS
