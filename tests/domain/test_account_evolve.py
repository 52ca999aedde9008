"""``evolve`` builds account states field by field: it must keep every field it does not change.

``domain.accounts`` names the fields of ``AccountState`` instead of calling
``dataclasses.replace`` (cheaper on every deposit). These tests fail if a field
is added to the state without updating it, or if an evolve step drops one.
"""

from __future__ import annotations

import dataclasses

import pytest

from domain.accounts import (
    ACCOUNT,
    AccountClosed,
    AccountEvent,
    AccountState,
    Leg,
    LegBook,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
)

A = "acc-0123456789abcdef0123456789abcdef"
T = "trf-0123456789abcdef0123456789abcdef"
OLD = "trf-ffffffffffffffffffffffffffffffff"

# Every field away from its default, so a dropped field shows as a changed value.
BEFORE = AccountState(
    exists=True,
    account_id=A,
    owner="Ada",
    currency="CHF",
    balance=5000,
    status="CLOSED",
    legs=LegBook.of([(OLD, Leg("credit", 70))]),
)


def test_the_state_fields_are_the_ones_evolve_names() -> None:
    names = [f.name for f in dataclasses.fields(AccountState)]
    assert names == ["exists", "account_id", "owner", "currency", "balance", "status", "legs"]


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        (MoneyDeposited(A, 100, 5100), {"balance": 5100}),
        (MoneyWithdrawn(A, 100, 4900), {"balance": 4900}),
        (AccountClosed(A), {"status": "CLOSED"}),
        (
            MoneyDebitedForTransfer(A, T, 300, "CHF", 4700),
            {"balance": 4700, "legs": BEFORE.legs.with_leg(T, Leg("debit", 300))},
        ),
        (
            MoneyCreditedForTransfer(A, T, 300, 5300),
            {"balance": 5300, "legs": BEFORE.legs.with_leg(T, Leg("credit", 300))},
        ),
        (
            MoneyRefundedForTransfer(A, T, 300, 5300),
            {"balance": 5300, "legs": BEFORE.legs.with_leg(T, Leg("debit", 300, True))},
        ),
    ],
)
def test_evolve_changes_only_what_the_event_says(
    event: AccountEvent, changes: dict[str, object]
) -> None:
    after = ACCOUNT.evolve(BEFORE, event)

    assert after == dataclasses.replace(BEFORE, **changes)  # type: ignore[arg-type]
    assert type(after) is AccountState
    assert BEFORE.balance == 5000  # the old state is untouched
