"""LegBook: an immutable map of transfer legs with cheap updates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.accounts import Leg, LegBook


def test_with_leg_leaves_the_old_book_untouched() -> None:
    empty = LegBook()
    one = empty.with_leg("trf-1", Leg("debit", 5))
    assert empty.get("trf-1") is None
    assert one.get("trf-1") == Leg("debit", 5)
    assert len(empty) == 0
    assert len(one) == 1


def test_replacing_a_leg() -> None:
    book = LegBook().with_leg("t", Leg("debit", 5)).with_leg("t", Leg("debit", 5, refunded=True))
    assert list(book.items()) == [("t", Leg("debit", 5, refunded=True))]


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 99), max_size=80))
def test_book_equals_a_dict_and_is_order_independent(legs: dict[str, int]) -> None:
    book = LegBook()
    for transfer_id, amount in legs.items():
        book = book.with_leg(transfer_id, Leg("credit", amount))
    expected = sorted((t, Leg("credit", a)) for t, a in legs.items())
    assert list(book.items()) == expected
    assert book == LegBook.of(reversed(expected))
    assert all(book.get(t) == Leg("credit", a) for t, a in legs.items())
