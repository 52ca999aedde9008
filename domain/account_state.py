"""The Account aggregate's state (a frozen value folded from its events) and its snapshot shape.

Snapshot shape version 1: the state's fields as plain values, ``legs`` as a
list of ``[transfer_id, kind, amount, refunded]`` sorted by transfer id.
``balance`` is unbounded (see ``domain.account``) and stored by
``domain.codec.storable_int``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from domain.codec import storable_int, stored_int
from domain.legs import Leg, LegBook


@dataclasses.dataclass(frozen=True)
class AccountState:
    """``exists`` is false before ``AccountOpened``; ``balance`` is int minor units.

    ``legs`` records every transfer leg of the account (for idempotency and
    refund checks); equality is structural.
    """

    exists: bool = False
    account_id: str = ""
    owner: str = ""
    currency: str = ""
    balance: int = 0
    status: Literal["OPEN", "CLOSED"] = "OPEN"
    legs: LegBook = dataclasses.field(default_factory=LegBook)


def state_to_snapshot(state: AccountState) -> dict[str, Any]:
    return {
        "exists": state.exists,
        "account_id": state.account_id,
        "owner": state.owner,
        "currency": state.currency,
        "balance": storable_int(state.balance),
        "status": state.status,
        "legs": [[tid, leg.kind, leg.amount, leg.refunded] for tid, leg in state.legs.items()],
    }


def state_from_snapshot(data: Mapping[str, Any]) -> AccountState:
    status = data["status"]
    if status not in ("OPEN", "CLOSED"):
        raise ValueError(f"malformed account snapshot: status {status!r}")
    legs = LegBook.of((str(t), _leg(k, a, r)) for t, k, a, r in data["legs"])
    return AccountState(
        exists=bool(data["exists"]),
        account_id=str(data["account_id"]),
        owner=str(data["owner"]),
        currency=str(data["currency"]),
        balance=stored_int(data["balance"]),
        status=status,
        legs=legs,
    )


def _leg(kind: object, amount: object, refunded: object) -> Leg:
    if kind not in ("debit", "credit"):
        raise ValueError(f"malformed account snapshot: leg kind {kind!r}")
    return Leg("debit" if kind == "debit" else "credit", int(str(amount)), bool(refunded))
