"""The ``account_statement`` read model: one line per money movement, in stream order.

``{_id: "<account_id>:<version>", account_id, version, position, kind
("deposit"|"withdrawal"|"transfer_out"|"transfer_in"|"refund"), amount
(signed minor units, bounded), balance (after the line; unbounded, so stored
by ``domain.codec.storable_int``), transfer_id|None, recorded_at}``. Lines
are immutable: inserting an existing ``_id`` again is "already applied".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.codec import storable_int, stored_int
from projections.projector import (
    ReadModelProjector,
    change_note,
    iso,
    position_of,
    publish_notes,
    relevant,
)
from store.protocol import RecordedEvent

NAME = "account_statement"
INDEXES = [[("account_id", 1), ("version", 1)]]

# event type -> (kind, sign of the amount)
KINDS: dict[str, tuple[str, int]] = {
    "MoneyDeposited": ("deposit", 1),
    "MoneyWithdrawn": ("withdrawal", -1),
    "MoneyDebitedForTransfer": ("transfer_out", -1),
    "MoneyCreditedForTransfer": ("transfer_in", 1),
    "MoneyRefundedForTransfer": ("refund", 1),
}


def line_id(account_id: str, version: int) -> str:
    return f"{account_id}:{version}"


def statement_line(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    kind, sign = KINDS[event.type]
    return {
        "_id": line_id(event.stream_id, event.version),
        "account_id": event.stream_id,
        "version": event.version,
        "position": position_of(event),
        "kind": kind,
        "amount": sign * int(data["amount"]),
        "balance": storable_int(stored_int(data["balance"])),
        "transfer_id": data.get("transfer_id"),
        "recorded_at": iso(event.recorded_at),
    }


class StatementProjector(ReadModelProjector):
    """Projects money movements into ``account_statement`` (or a fixed ``physical``)."""

    name = NAME
    indexes = INDEXES

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        lines = [
            statement_line(event, data)
            for event, data in relevant(events, KINDS, "account", self._registry)
        ]
        await self.target.documents.insert_new(self.target.name, lines)
        publish_notes(
            self._hub, [(f"statement:{line['account_id']}", line_note(line)) for line in lines]
        )


def line_note(line: dict[str, Any]) -> dict[str, Any]:
    return change_note(line["_id"], line["version"], line["position"])
