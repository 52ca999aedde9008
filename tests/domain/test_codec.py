"""The bank event registry: every event round-trips; AccountOpened v1 upcasts to v2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.accounts import COMMANDS as ACCOUNT_COMMANDS
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import EVENTS as ACCOUNT_EVENTS
from domain.accounts import (
    AccountOpened,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
)
from domain.aggregate import deciders
from domain.codec import (
    INT64_MAX,
    INT64_MIN,
    EventRegistry,
    build_registry,
    storable_int,
    stored_int,
)
from domain.transfers import COMMANDS as TRANSFER_COMMANDS
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import EVENTS as TRANSFER_EVENTS
from domain.transfers import (
    TRANSFER,
    TransferDebitedAfterFailure,
    TransferFailed,
    TransferParked,
    TransferRequested,
    TransferStepRetried,
)

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)

SAMPLES: list[Any] = [
    AccountOpened("acc-1", "Ada", "USD"),
    MoneyDeposited("acc-1", 500, 500),
    MoneyDebitedForTransfer("acc-1", "trf-1", 5, "USD", 495),
    TransferRequested("trf-1", "acc-1", "acc-2", 5),
    TransferFailed("trf-1", "insufficient_funds"),
    TransferDebitedAfterFailure("trf-1", "USD"),
    TransferParked("trf-1", "refund", "refund refused: invalid_input: limit", 2),
    TransferStepRetried("trf-1", "refund", 2, "DEBITED", None),
    MoneyRefundedForTransfer("acc-1", "trf-1", 5, 2**64),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_round_trip(event: Any) -> None:
    encoded = EVENTS.encode(event)
    assert encoded.type == type(event).__name__
    assert EVENTS.decode(encoded.type, encoded.schema_version, encoded.data) == event


def test_every_event_is_registered() -> None:
    for cls in (*ACCOUNT_EVENTS, *TRANSFER_EVENTS):
        assert EVENTS.knows(cls.__name__)
        assert EVENTS.type_name(cls) == cls.__name__


def test_every_command_has_a_decider() -> None:
    assert set(DECIDERS) == {*ACCOUNT_COMMANDS, *TRANSFER_COMMANDS}
    assert all(DECIDERS[cls] is TRANSFER for cls in TRANSFER_COMMANDS)
    assert {d.stream_type for d in DECIDERS.values()} == {"account", "transfer"}


def test_encode_writes_account_opened_v2() -> None:
    encoded = EVENTS.encode(AccountOpened("acc-1", "Ada", "USD"))
    assert encoded.schema_version == 2 == EVENTS.current_version("AccountOpened")
    assert encoded.data == {"account_id": "acc-1", "owner": "Ada", "currency": "USD"}


def test_stored_v1_account_opened_decodes_with_eur() -> None:
    stored = {"account_id": "acc-1", "owner": "Ada"}
    event = EVENTS.decode("AccountOpened", 1, stored)
    assert event == AccountOpened("acc-1", "Ada", "EUR")
    assert stored == {"account_id": "acc-1", "owner": "Ada"}  # the stored data is untouched


def test_upcast_alone_shows_the_v2_shape() -> None:
    upgraded = EVENTS.upcast("AccountOpened", 1, {"account_id": "a", "owner": "o"})
    assert upgraded == {"account_id": "a", "owner": "o", "currency": "EUR"}


def test_current_events_are_not_upcast() -> None:
    assert EVENTS.decode("MoneyDeposited", 1, {"account_id": "a", "amount": 1, "balance": 1}) == (
        MoneyDeposited("a", 1, 1)
    )


@dataclass(frozen=True)
class _Tagged:
    name: str
    tags: tuple[str, ...]
    count: int = 0


def test_encode_writes_fields_in_declaration_order_and_tuples_as_lists() -> None:
    registry = EventRegistry()
    registry.register(_Tagged)
    for _ in range(2):  # the field names are looked up once, then reused
        encoded = registry.encode(_Tagged("n", ("a", "b"), 3))
        assert list(encoded.data.items()) == [("name", "n"), ("tags", ["a", "b"]), ("count", 3)]
        assert registry.decode("_Tagged", 1, encoded.data) == _Tagged("n", ("a", "b"), 3)


def test_decode_ignores_stored_fields_the_class_does_not_have() -> None:
    registry = EventRegistry()
    registry.register(_Tagged)
    stored = {"name": "n", "tags": [], "dropped_later": 1}
    assert registry.decode("_Tagged", 1, stored) == _Tagged("n", ())


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_storable_ints_round_trip_exactly(value: int) -> None:
    stored = storable_int(value)
    assert stored_int(stored) == value
    assert isinstance(stored, int) == (INT64_MIN <= value <= INT64_MAX)


@pytest.mark.parametrize("value", [True, 1.0, "1.0", "", " 1", "1e3", "0x10", "\u0661", None, [1]])
def test_stored_int_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="not a stored integer"):
        stored_int(value)


def test_wide_fields_keep_the_int_shape_while_it_fits() -> None:
    # Events stored before wide fields existed read the same, and new ones look alike.
    assert EVENTS.encode(MoneyDeposited("acc-1", 5, INT64_MAX)).data["balance"] == INT64_MAX
    beyond = EVENTS.encode(MoneyDeposited("acc-1", 5, INT64_MAX + 1))
    assert beyond.data == {"account_id": "acc-1", "amount": 5, "balance": str(INT64_MAX + 1)}
    assert EVENTS.decode("MoneyDeposited", 1, beyond.data).balance == INT64_MAX + 1


def test_wide_fields_must_exist() -> None:
    with pytest.raises(ValueError, match="no field"):
        EventRegistry().register(MoneyDeposited, wide=("balanse",))
