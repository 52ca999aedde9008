"""Opaque cursors and pages for the read views (Relay-style connections).

A cursor is base64url of ``[kind, [sort values...]]``: the sort values of the
row it points at (keyset pagination: stable while rows are added, no
skip/offset). Cursors from one view are refused by another (``kind``). A page
runs forwards (``first`` rows after the ``after`` cursor) or backwards (the
``last`` rows before the ``before`` cursor); one cursor serves both
directions. Backwards is the same keyset query with every sort direction
flipped, so a database serves it from the same index read in reverse, with
the same tie handling, and its rows are put back in view order here. Bad
cursors, page sizes and mixed directions raise ``InvalidInput`` naming the
argument.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.aggregate import InvalidInput
from projections.documents import DocumentStore, Query, SortKey, sort_values

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvalidCursor(InvalidInput):
    """The ``after`` (or ``before``) cursor was not made by this view."""

    def __init__(self, message: str = "invalid cursor", field: str = "after") -> None:
        super().__init__(field, message)


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows in view order; the flags say whether rows exist beyond either end.

    ``has_previous_page`` is exact for a page read backwards and, for a page
    read forwards, whether rows exist before its ``after`` cursor (false
    without one); ``has_next_page`` likewise the other way round.
    """

    edges: list[Edge[T]]
    has_next_page: bool
    has_previous_page: bool = False

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None

    @property
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps([kind, list(values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    kind: str, cursor: str, sort: Sequence[SortKey], field: str = "after"
) -> list[Any]:
    """The sort values inside ``cursor``; ``InvalidCursor`` unless made by ``kind``."""
    if len(cursor) > 1024:
        raise InvalidCursor("cursor too long", field)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursor(field=field) from error
    if found_kind != kind or not isinstance(values, list) or len(values) != len(sort):
        raise InvalidCursor(field=field)
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise InvalidCursor(field=field)
    return values


@dataclass(frozen=True)
class PageSpec:
    """How one view pages: cursor kind, sort, and the page size limits."""

    kind: str
    sort: Sequence[SortKey]
    default_size: int = DEFAULT_PAGE_SIZE
    max_size: int = MAX_PAGE_SIZE

    def size(self, first: int | None, field: str = "first") -> int:
        size = self.default_size if first is None else first
        if size < 0 or size > self.max_size:
            raise InvalidInput(field, f"{field} must be between 0 and {self.max_size}")
        return size

    @property
    def reversed_sort(self) -> list[SortKey]:
        return [(name, -direction) for name, direction in self.sort]


def check_directions(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> None:
    """``InvalidInput`` unless the arguments ask for one direction: first/after or last/before."""
    if first is not None and last is not None:
        raise InvalidInput("last", "give first or last, not both")
    if after is not None and before is not None:
        raise InvalidInput("before", "give after or before, not both")
    if first is not None and before is not None:
        raise InvalidInput("before", "before pages backwards: use it with last, not first")
    if last is not None and after is not None:
        raise InvalidInput("after", "after pages forwards: use it with first, not last")


async def fetch_page(
    documents: DocumentStore,
    collection: str,
    spec: PageSpec,
    convert: Callable[[Mapping[str, Any]], T],
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    where: Mapping[str, Any] | None = None,
    any_of: Sequence[Mapping[str, Any]] = (),
) -> Page[T]:
    """One page of ``collection`` in ``spec.sort`` order.

    Forwards: the first ``first`` rows after the ``after`` cursor. Backwards
    (``last`` or ``before`` given): the last ``last`` rows before the
    ``before`` cursor, read through the reversed sort. Either way one bounded
    keyset query reads the page plus one row, and a page that starts from a
    cursor costs one more query of one row to tell whether rows lie beyond
    the cursor.
    """
    check_directions(first, after, last, before)
    backwards = last is not None or before is not None
    field, size_arg, cursor = ("last", last, before) if backwards else ("first", first, after)
    size = spec.size(size_arg, field)
    start = (
        decode_cursor(spec.kind, cursor, spec.sort, "before" if backwards else "after")
        if cursor is not None
        else None
    )
    sort = spec.reversed_sort if backwards else list(spec.sort)
    filters = dict(where or {})
    docs = (
        await documents.find(collection, Query(filters, any_of, sort, start, size + 1))
        if size > 0
        else []
    )
    beyond_cursor = False
    if start is not None:
        # Rows on the cursor's other side: the reversed query after the cursor, one row.
        opposite = list(spec.sort) if backwards else spec.reversed_sort
        beyond_cursor = bool(
            await documents.find(collection, Query(filters, any_of, opposite, start, 1))
        )
    rows = docs[:size]
    if backwards:
        rows.reverse()
    edges = [
        Edge(encode_cursor(spec.kind, sort_values(doc, spec.sort)), convert(doc)) for doc in rows
    ]
    more = len(docs) > size
    if backwards:
        return Page(edges, has_next_page=beyond_cursor, has_previous_page=more)
    return Page(edges, has_next_page=more, has_previous_page=beyond_cursor)
