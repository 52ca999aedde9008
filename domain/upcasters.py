"""Upcasters: pure steps that turn an older stored event shape into the next one.

Stored events are never rewritten; these run on every read of old data.
"""

from __future__ import annotations

from typing import Any

DEFAULT_V1_CURRENCY = "EUR"
"""Accounts opened before currencies existed (AccountOpened v1) held euros."""


def account_opened_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """AccountOpened v1 had no ``currency``; v2 adds it, "EUR" for old accounts."""
    return {**data, "currency": data.get("currency") or DEFAULT_V1_CURRENCY}
