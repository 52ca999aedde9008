"""Exact money: int minor units (cents) inside, decimal strings at the edges.

Amounts always have two minor digits. Parsing is done with a strict regular
expression and integer arithmetic, never ``float`` or ``Decimal``, so "NaN",
"1e3", "0x10", "1_000", non-ASCII digits and signs are all rejected.
"""

from __future__ import annotations

import re

from domain.aggregate import InvalidInput

MINOR_DIGITS = 2
MAX_AMOUNT_MINOR = 10**15
"""Largest amount of one command (10 trillion major units)."""
MAX_BALANCE_MINOR = 10**18
"""Largest balance an account may reach: keeps every stored int inside int64."""

_AMOUNT = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,2}))?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


def parse_amount(text: object, field: str = "amount") -> int:
    """Parse a positive decimal string ("12", "12.3", "12.30") into minor units.

    Typed ``object`` because it guards untrusted input: non-strings are rejected.

    Raises ``InvalidInput(field)`` unless it is > 0, has at most 2 decimals and
    is at most ``MAX_AMOUNT_MINOR``. Surrounding whitespace is ignored.
    """
    if not isinstance(text, str):
        raise InvalidInput(field, "amount must be a decimal string", value=None)
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            field,
            "amount must be a positive decimal number with at most 2 decimal places",
            value=text[:40],
        )
    major, minor = match.group(1), (match.group(2) or "").ljust(MINOR_DIGITS, "0")
    return check_amount(int(major) * 10**MINOR_DIGITS + int(minor), field)


def check_amount(minor: object, field: str = "amount") -> int:
    """Return ``minor`` if it is an int with 0 < minor <= ``MAX_AMOUNT_MINOR``."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise InvalidInput(field, "amount must be an integer number of minor units", value=None)
    if minor <= 0:
        raise InvalidInput(field, "amount must be greater than zero", value=minor)
    if minor > MAX_AMOUNT_MINOR:
        raise InvalidInput(
            field,
            f"amount must be at most {format_amount(MAX_AMOUNT_MINOR)}",
            value=minor,
            maximum=MAX_AMOUNT_MINOR,
        )
    return minor


def format_amount(minor: int) -> str:
    """Format minor units as a decimal string: 1230 -> "12.30", -50 -> "-0.50"."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 10**MINOR_DIGITS)
    return f"{sign}{major}.{cents:0{MINOR_DIGITS}d}"


def parse_currency(code: object, field: str = "currency") -> str:
    """Return the upper-cased 3-letter ISO 4217-style code, or raise ``InvalidInput(field)``."""
    if not isinstance(code, str) or not code.isascii():
        raise InvalidInput(field, "currency must be a 3-letter code", value=None)
    upper = code.strip().upper()
    if _CURRENCY.fullmatch(upper) is None:
        raise InvalidInput(field, "currency must be a 3-letter code like EUR", value=code[:10])
    return upper
