"""The ``transfers`` read model: one document per transfer, as of its stream version.

``{_id: transfer_id, from_account_id, to_account_id, amount, currency|None,
status "REQUESTED"|"DEBITED"|"COMPLETED"|"FAILED", reason|None, version,
position, requested_at, updated_at}``. A refused credit keeps the status
``DEBITED`` with its ``reason`` until the refund fails the transfer.
"""

from __future__ import annotations

from typing import Any

from projections.projector import FieldsOf, StreamDocumentsProjector, iso
from store.protocol import RecordedEvent

NAME = "transfers"
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
        "requested_at": iso(event.recorded_at),
    }


def _debited(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "DEBITED", "currency": data["currency"]}


def _credit_refused(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"reason": data["reason"]}


def _refunded(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {}


def _completed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "COMPLETED"}


def _failed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "FAILED", "reason": data["reason"]}


FIELDS: dict[str, FieldsOf] = {
    "TransferRequested": _requested,
    "TransferDebited": _debited,
    "TransferCreditRefused": _credit_refused,
    "TransferRefunded": _refunded,
    "TransferCompleted": _completed,
    "TransferFailed": _failed,
}


class TransfersProjector(StreamDocumentsProjector):
    """Projects transfer events into ``transfers`` (or the fixed ``physical`` collection)."""

    name = NAME
    indexes = INDEXES
    stream_type = "transfer"
    fields = FIELDS
