"""The bank domain wired together: the event registry and the command routing.

``EVENTS`` knows every event class (current schema versions) and every
upcaster; ``DECIDERS`` maps each command class to the decider that handles it.
"""

from __future__ import annotations

from typing import Any

from domain.account import ACCOUNT
from domain.account_messages import ACCOUNT_COMMANDS, ACCOUNT_EVENTS, WIDE_FIELDS, AccountOpened
from domain.aggregate import Decider
from domain.codec import EventRegistry
from domain.transfer import TRANSFER
from domain.transfer_messages import TRANSFER_COMMANDS, TRANSFER_EVENTS
from domain.upcasters import account_opened_v1_to_v2

EVENT_SCHEMA_VERSIONS: dict[type, int] = {AccountOpened: 2}
"""Event classes whose current schema version is above 1."""


def build_registry() -> EventRegistry:
    """A fresh registry with every bank event and upcaster registered."""
    registry = EventRegistry()
    for cls in (*ACCOUNT_EVENTS, *TRANSFER_EVENTS):
        registry.register(
            cls, version=EVENT_SCHEMA_VERSIONS.get(cls, 1), wide=WIDE_FIELDS.get(cls, ())
        )
    registry.register_upcaster("AccountOpened", 1, account_opened_v1_to_v2)
    return registry


EVENTS: EventRegistry = build_registry()

DECIDERS: dict[type, Decider[Any, Any, Any]] = {
    **dict.fromkeys(ACCOUNT_COMMANDS, ACCOUNT),
    **dict.fromkeys(TRANSFER_COMMANDS, TRANSFER),
}
