"""The read views a test wiring puts in the context (projections' own classes)."""

from __future__ import annotations

from typing import Any

from projections.documents import DocumentStore
from store.protocol import EventStore


def make_views(documents: DocumentStore, store: EventStore) -> dict[str, Any]:
    return {"accounts": None, "statements": None, "transfers": None, "ledger": None}
