"""Fresh identifiers. Aggregates never make ids: they arrive on commands.

Every id is a short type prefix and 32 lowercase hex digits of a random UUID
(``acc-3f2a...``), so an id says what it names and never collides in practice.
"""

from __future__ import annotations

import uuid


def _new(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def new_account_id() -> str:
    """An account id: ``acc-<32 hex>``."""
    return _new("acc")


def new_transfer_id() -> str:
    """A transfer id: ``trf-<32 hex>``."""
    return _new("trf")


def new_event_id() -> str:
    """An event id: ``evt-<32 hex>``; every appended event gets a new one."""
    return _new("evt")


def new_command_id() -> str:
    """A command id: ``cmd-<32 hex>``; a repeated command id is applied at most once."""
    return _new("cmd")
