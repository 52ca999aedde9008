"""Read-model topics and the change/source records.

A topic is ``"<kind>:<key>"`` (``"account:<id>"``) or a kind alone
(``"ledger"``); each kind's ``ReadModelSource`` says how to read its documents
and which of its topics an event may change. Projectors
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
    """How to read one kind of document, which consumer writes it, what changes it.

    ``load(key)`` returns the document: a record or mapping with ``version``
    and ``position``, a list of them (the ledger), or ``None`` if absent.
    ``route(event)`` names the topics of this kind the event may change.
    """

    consumer: str
    load: Loader
    route: Callable[[RecordedEvent], tuple[str, ...]]


def topic_for(kind: str, key: str = "") -> str:
    """``"<kind>:<key>"``, or ``kind`` alone when there is no key."""
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
