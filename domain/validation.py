"""Checks of raw text values on commands: the domain never trusts its callers.

Each check returns the canonical value (trimmed) or raises ``InvalidInput``
naming the field. Typed ``object`` because the values are untrusted.
"""

from __future__ import annotations

from domain.aggregate import InvalidInput

MAX_ID_LENGTH = 100
MAX_OWNER_LENGTH = 200
MAX_REASON_LENGTH = 500


def check_id(value: object, field: str) -> str:
    """An id: a non-empty printable ASCII string without spaces, at most 100 characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_ID_LENGTH
        or not value.isascii()
        or not value.isprintable()
        or " " in value
    ):
        shown = value[:MAX_ID_LENGTH] if isinstance(value, str) else None
        raise InvalidInput(field, f"{field} must be a valid id", value=shown)
    return value


def check_text(value: object, field: str, max_length: int) -> str:
    """Non-empty after trimming, at most ``max_length`` characters, no control characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"{field} must be text", value=None)
    text = value.strip()
    if not text:
        raise InvalidInput(field, f"{field} must not be empty", value=value[:max_length])
    if len(text) > max_length:
        raise InvalidInput(
            field,
            f"{field} must be at most {max_length} characters",
            value=text[:max_length],
            max_length=max_length,
        )
    if not text.isprintable():
        raise InvalidInput(field, f"{field} must not contain control characters", value=None)
    return text


def check_owner(value: object) -> str:
    return check_text(value, "owner", MAX_OWNER_LENGTH)


def check_reason(value: object) -> str:
    return check_text(value, "reason", MAX_REASON_LENGTH)
