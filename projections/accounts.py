"""The ``accounts`` read model: one document per account, as of its stream version.

``{_id: account_id, owner, currency, balance, balance_minor, status
"OPEN"|"CLOSED", version, position, opened_at, updated_at}``: ``balance`` is
the decimal string (``domain.money.format_amount``, e.g. ``"12.30"``) and
``balance_minor`` the exact minor units for arithmetic, as
``domain.codec.storable_int`` stores them: an int64 for every balance a
deposit can reach, a digit string only beyond (a refund past the maximum).
Nothing sorts by it; read it with ``projections.records.balance_minor``.
Times are ISO-8601 UTC strings. Writes are guarded by ``version``; a batch's
events for one account are merged into a single write.
"""

from __future__ import annotations

from typing import Any

from domain.codec import storable_int, stored_int
from domain.money import format_amount
from projections.projector import FieldsOf, StreamDocumentsProjector, iso
from store.protocol import RecordedEvent

NAME = "accounts"
INDEXES = [[("owner", 1)]]


def _opened(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": data["owner"],
        "currency": data["currency"],
        **_money(0),
        "status": "OPEN",
        "opened_at": iso(event.recorded_at),
    }


def _money(minor: int) -> dict[str, Any]:
    return {"balance": format_amount(minor), "balance_minor": storable_int(minor)}


def _balance(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return _money(stored_int(data["balance"]))


def _closed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "CLOSED"}


FIELDS: dict[str, FieldsOf] = {
    "AccountOpened": _opened,
    "MoneyDeposited": _balance,
    "MoneyWithdrawn": _balance,
    "MoneyDebitedForTransfer": _balance,
    "MoneyCreditedForTransfer": _balance,
    "MoneyRefundedForTransfer": _balance,
    "AccountClosed": _closed,
}


class AccountsProjector(StreamDocumentsProjector):
    """Projects account events into ``accounts`` (or the fixed ``physical`` collection)."""

    name = NAME
    indexes = INDEXES
    stream_type = "account"
    fields = FIELDS
