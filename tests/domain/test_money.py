"""Money parsing and formatting: exact, strict, never float."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.aggregate import InvalidInput
from domain.money import (
    MAX_AMOUNT_MINOR,
    check_amount,
    format_amount,
    parse_amount,
    parse_currency,
)


@pytest.mark.parametrize(
    ("text", "minor"),
    [("12", 1200), ("12.3", 1230), ("12.30", 1230), ("0.01", 1), (" 7.05 ", 705), ("007", 700)],
)
def test_parse_amount(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


def test_parse_max_amount() -> None:
    assert parse_amount("10000000000000.00") == MAX_AMOUNT_MINOR


BAD = ["", "0", "0.00", "-1", "+1", "0.001", "1.", ".5", "1e3", "NaN", "nan", "inf", "Infinity",
       "1_000", "1,00", "0x10", "١٢", "10000000000000.01", "9" * 5000, "1 2", "12.3.4"]  # fmt: skip


@pytest.mark.parametrize("text", BAD)
def test_parse_amount_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_amount(text)
    assert caught.value.field == "amount"
    assert caught.value.code == "invalid_input"


@pytest.mark.parametrize("value", [None, 12, 1.5, b"12"])
def test_parse_amount_rejects_non_strings(value: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_amount(value)


def test_parse_amount_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_amount("x", field="limit")
    assert caught.value.details["field"] == "limit"


@pytest.mark.parametrize("value", [0, -3, MAX_AMOUNT_MINOR + 1, True, 1.0, "5"])
def test_check_amount_rejects(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_amount(value)


@pytest.mark.parametrize(
    ("minor", "text"), [(1230, "12.30"), (-50, "-0.50"), (0, "0.00"), (5, "0.05"), (100, "1.00")]
)
def test_format_amount(minor: int, text: str) -> None:
    assert format_amount(minor) == text


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


@pytest.mark.parametrize(("code", "canonical"), [("EUR", "EUR"), ("usd", "USD"), (" chf ", "CHF")])
def test_parse_currency(code: str, canonical: str) -> None:
    assert parse_currency(code) == canonical


@pytest.mark.parametrize("code", ["", "EU", "EURO", "E1R", "\u0131bc", "ÄÖÜ", None, 978])
def test_parse_currency_rejects(code: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_currency(code)
    assert caught.value.field == "currency"
