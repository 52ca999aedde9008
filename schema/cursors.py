"""Opaque pagination cursors: base64url of a JSON list of sort values.

Clients must treat cursors as opaque; anything that does not decode to a
list of plain JSON values of the expected length is refused with a
``ClientError`` ("invalid cursor"), never passed on to a query.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from schema.errors import ClientError

MAX_CURSOR_LENGTH = 512


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, length: int) -> list[Any] | None:
    """The sort values in ``cursor`` (None for no cursor); ``ClientError`` if invalid."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ClientError("invalid cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ClientError("invalid cursor") from exc
    if not isinstance(values, list) or len(values) != length:
        raise ClientError("invalid cursor")
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise ClientError("invalid cursor")
    return values
