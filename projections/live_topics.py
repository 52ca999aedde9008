"""Read-model topics, how events route to them, and the change/source records.

Topics: ``"account:<id>"``, ``"transfer:<id>"``, ``"ledger"``. Projectors
publish change notes ``{id, version, position}`` on the topic itself;
documents go to ``live_topic(topic)``, so a note never displaces a document
in a subscriber's queue (``projections.live_read_models``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from projections.subscription import position_of
from store.protocol import RecordedEvent

LEDGER_TOPIC = "ledger"
LIVE_PREFIX = "live:"
Loader = Callable[[str], Awaitable[Any]]
CheckpointReader = Callable[[str, int], Awaitable[int]]
"""``(consumer, needed) -> position``: may skip the database when ``needed`` is known reached."""


@dataclass(frozen=True)
class ReadModelChange:
    """A read-model document as of ``position`` (``version``: its stream version).

    ``document`` is what the source loaded (a read-view record, a list of
    them for the ledger) or ``None`` when it does not exist (yet).
    """

    topic: str
    document: Any
    version: int | None
    position: int


@dataclass(frozen=True)
class ReadModelSource:
    """How to read one kind of document and which consumer writes it.

    ``load(key)`` returns the document: a record or mapping with ``version``
    and ``position``, a list of them (the ledger), or ``None`` if absent.
    """

    consumer: str
    load: Loader


def topic_for(kind: str, key: str = "") -> str:
    """``"account:<id>"``, ``"transfer:<id>"`` or ``"ledger"``."""
    return f"{kind}:{key}" if key else kind


def live_topic(topic: str) -> str:
    """The hub topic carrying ``ReadModelChange`` messages for ``topic``.

    Kept apart from ``topic`` itself, where projectors publish their change
    notes: a note must never take a document's place in a latest-only queue.
    """
    return LIVE_PREFIX + topic


def split_topic(topic: str) -> tuple[str, str]:
    kind, _, key = topic.partition(":")
    return kind, key


def route(event: RecordedEvent) -> tuple[str, ...]:
    """The read-model topics an event may change."""
    if event.stream_type == "account":
        return (topic_for("account", event.stream_id), LEDGER_TOPIC)
    if event.stream_type == "transfer":
        return (topic_for("transfer", event.stream_id),)
    return ()


def describe(document: Any) -> tuple[int | None, int]:
    """(version, position) a loaded document or record reflects; position 0 when absent.

    A list (the ledger: one entry per currency) reflects its highest position.
    """
    if document is None:
        return None, 0
    if isinstance(document, Sequence) and not isinstance(document, str):
        return None, max((position_of(item) or 0 for item in document), default=0)
    if isinstance(document, Mapping):
        version = document.get("version")
    else:
        version = getattr(document, "version", None)
    return (version if isinstance(version, int) else None), position_of(document) or 0
