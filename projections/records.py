"""Typed read-model rows, as the read views return them to the API layer.

Money is int minor units (``domain.money.format_amount`` makes the API's
decimal string), read back exactly from ``domain.codec.storable_int``'s stored
shape; times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.codec import stored_int


def parse_time(value: Any) -> datetime:
    """A stored ISO-8601 string (or datetime) as an aware UTC datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def balance_minor(doc: Mapping[str, Any]) -> int:
    """An ``accounts`` document's exact balance in minor units.

    ``balance`` is stored as the decimal string and ``balance_minor`` as the
    int; documents written before ``balance_minor`` existed held the int in
    ``balance``, read as such until a rebuild rewrites them.
    """
    if "balance_minor" in doc:
        return stored_int(doc["balance_minor"])
    return stored_int(doc["balance"])


@dataclass(frozen=True)
class AccountRecord:
    id: str
    owner: str
    currency: str
    balance: int
    status: str
    version: int
    position: int
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AccountRecord:
        return cls(
            id=doc["_id"],
            owner=doc["owner"],
            currency=doc["currency"],
            balance=balance_minor(doc),
            status=doc["status"],
            version=int(doc["version"]),
            position=int(doc["position"]),
            opened_at=parse_time(doc["opened_at"]),
            updated_at=parse_time(doc["updated_at"]),
        )


@dataclass(frozen=True)
class StatementLine:
    id: str
    account_id: str
    version: int
    position: int
    kind: str
    amount: int
    balance: int
    transfer_id: str | None
    recorded_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StatementLine:
        return cls(
            id=doc["_id"],
            account_id=doc["account_id"],
            version=int(doc["version"]),
            position=int(doc["position"]),
            kind=doc["kind"],
            amount=int(doc["amount"]),
            balance=stored_int(doc["balance"]),
            transfer_id=doc.get("transfer_id"),
            recorded_at=parse_time(doc["recorded_at"]),
        )


@dataclass(frozen=True)
class TransferRecord:
    id: str
    from_account_id: str
    to_account_id: str
    amount: int
    currency: str | None
    status: str
    reason: str | None
    version: int
    position: int
    requested_at: datetime
    updated_at: datetime
    parked_step: str | None = None
    parked_attempt: int = 0

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TransferRecord:
        return cls(
            id=doc["_id"],
            from_account_id=doc["from_account_id"],
            to_account_id=doc["to_account_id"],
            amount=int(doc["amount"]),
            currency=doc.get("currency"),
            status=doc["status"],
            reason=doc.get("reason"),
            version=int(doc["version"]),
            position=int(doc["position"]),
            requested_at=parse_time(doc["requested_at"]),
            updated_at=parse_time(doc["updated_at"]),
            parked_step=doc.get("parked_step"),
            parked_attempt=int(doc.get("parked_attempt") or 0),
        )


@dataclass(frozen=True)
class LedgerTotals:
    currency: str
    open_accounts: int
    total_balance: int
    total_deposited: int
    total_withdrawn: int
    position: int

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LedgerTotals:
        return cls(
            currency=doc["_id"],
            open_accounts=int(doc["open_accounts"]),
            total_balance=stored_int(doc["total_balance"]),
            total_deposited=stored_int(doc["total_deposited"]),
            total_withdrawn=stored_int(doc["total_withdrawn"]),
            position=int(doc["position"]),
        )
