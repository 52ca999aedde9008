"""The Account aggregate's state: a frozen value folded from its events."""

from __future__ import annotations

import dataclasses
from typing import Literal

from domain.legs import LegBook


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
