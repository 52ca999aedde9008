"""Opaque cursors and pages for the read views (Relay-style connections).

A cursor is base64url of ``[kind, [sort values...]]``: the sort values of the
last row seen (keyset pagination: stable while rows are added, no skip/offset).
Cursors from one view are refused by another (``kind``). Bad cursors and page
sizes raise ``InvalidInput`` with ``field`` "after" or "first".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.errors import InvalidInput
from projections.documents import DocumentStore, Query, SortKey, sort_values

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvalidCursor(InvalidInput):
    """The ``after`` cursor was not made by this view."""

    def __init__(self, message: str = "invalid cursor") -> None:
        super().__init__("after", message)


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    edges: list[Edge[T]]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None

    @property
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps([kind, list(values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, sort: Sequence[SortKey]) -> list[Any]:
    """The sort values inside ``cursor``; ``InvalidCursor`` unless made by ``kind``."""
    if len(cursor) > 1024:
        raise InvalidCursor("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursor() from error
    if found_kind != kind or not isinstance(values, list) or len(values) != len(sort):
        raise InvalidCursor()
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise InvalidCursor()
    return values


@dataclass(frozen=True)
class PageSpec:
    """How one view pages: cursor kind, sort, and the page size limits."""

    kind: str
    sort: Sequence[SortKey]
    default_size: int = DEFAULT_PAGE_SIZE
    max_size: int = MAX_PAGE_SIZE

    def size(self, first: int | None) -> int:
        size = self.default_size if first is None else first
        if size < 0 or size > self.max_size:
            raise InvalidInput("first", f"first must be between 0 and {self.max_size}")
        return size


async def fetch_page(
    documents: DocumentStore,
    collection: str,
    spec: PageSpec,
    convert: Callable[[Mapping[str, Any]], T],
    *,
    first: int | None,
    after: str | None,
    where: Mapping[str, Any] | None = None,
    any_of: Sequence[Mapping[str, Any]] = (),
) -> Page[T]:
    """One page of ``collection`` in ``spec.sort`` order, after the ``after`` cursor."""
    size = spec.size(first)
    start = decode_cursor(spec.kind, after, spec.sort) if after is not None else None
    query = Query(dict(where or {}), any_of, spec.sort, start, size + 1)
    docs = await documents.find(collection, query) if size > 0 else []
    edges = [
        Edge(encode_cursor(spec.kind, sort_values(doc, spec.sort)), convert(doc))
        for doc in docs[:size]
    ]
    return Page(edges, has_next_page=len(docs) > size)
