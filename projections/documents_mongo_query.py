"""Query shapes for ``MongoDocumentStore.find`` that an index can serve on both servers.

nx-27017 (docs/architecture.md section 6) serves ``{field: {"$eq": v}}`` and
single-field ranges from an index, but evaluates ``$or`` and ``$and`` in
Python over the whole collection, turns a bare equality into an array
containment test no index serves, and compares ISO-8601 strings through
SQLite's ``datetime()``, which drops the fraction of a second. So:

- equalities are written as ``$eq``;
- ``any_of`` becomes one query per alternative, merged here in sort order;
- a keyset cursor becomes an *inclusive* bound on the first sort key, merged
  into the same filter dict; the rows not strictly after the cursor (ties on
  the first key, or same-second rows on nx) are dropped here, and the query is
  repeated with a larger limit in the rare case they filled the page.

Every shape selects a superset of the wanted rows and the exact keyset test
runs in Python, so a server's approximation costs speed, never correctness.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from projections.documents import Document, Query, SortKey

# Extra rows asked for after a cursor: the cursor row itself, exact ties and, on
# nx-27017, the rest of its second come back too and are dropped here.
TIE_MARGIN = 32

Fetch = Callable[[dict[str, Any], int | None], Awaitable[list[Document]]]


async def find_shaped(fetch: Fetch, query: Query) -> list[Document]:
    """The documents ``query`` selects, through ``fetch(filter, limit)`` calls."""
    alternatives = [dict(alt) for alt in query.any_of] or [{}]
    found: dict[Any, Document] = {}
    for alt in alternatives:
        base = _equalities(query.where, alt)
        for doc in await _after_cursor(fetch, base, query):
            found.setdefault(doc["_id"], doc)
    if len(alternatives) == 1:
        return list(found.values())
    ordered = sorted(found.values(), key=functools.cmp_to_key(_comparer(query.sort)))
    return ordered if query.limit is None else ordered[: query.limit]


async def _after_cursor(fetch: Fetch, base: dict[str, Any], query: Query) -> list[Document]:
    """Up to ``query.limit`` documents matching ``base`` strictly after ``query.after``."""
    if query.after is None:
        return await fetch(base, query.limit)
    if len(query.after) != len(query.sort):
        raise ValueError("cursor does not match the sort")
    name, direction = query.sort[0]
    # ``_id`` is unique and compared exactly everywhere: a strict bound leaves no ties.
    strict = "$gt" if direction > 0 else "$lt"
    inclusive = "$gte" if direction > 0 else "$lte"
    bound = strict if name == "_id" else inclusive
    bounded = _with_condition(base, name, {bound: query.after[0]})
    cursor = dict(zip((n for n, _ in query.sort), query.after, strict=True))
    compare = _comparer(query.sort)
    fetch_size = None if query.limit is None else query.limit + TIE_MARGIN
    while True:
        docs = await fetch(bounded, fetch_size)
        kept = [doc for doc in docs if compare(doc, cursor) > 0]
        if fetch_size is None or query.limit is None or len(docs) < fetch_size:
            return kept[: query.limit] if query.limit is not None else kept
        if len(kept) >= query.limit:
            return kept[: query.limit]
        # The rows at or before the cursor (a prefix in sort order) filled the page.
        fetch_size = max(2 * fetch_size, len(docs) - len(kept) + query.limit)


def _equalities(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"$eq": value}}`` for every field of ``parts`` (same field: both must hold)."""
    result: dict[str, Any] = {}
    for part in parts:
        for name, value in part.items():
            result = _with_condition(result, name, {"$eq": value})
    return result


def _with_condition(base: dict[str, Any], name: str, condition: dict[str, Any]) -> dict[str, Any]:
    """``base`` and ``{name: condition}``: merged into one dict unless an operator collides."""
    current = base.get(name)
    if current is None:
        return {**base, name: condition}
    if isinstance(current, dict) and not set(current) & set(condition):
        return {**base, name: {**current, **condition}}
    rest = {k: v for k, v in base.items() if k != name}
    return (
        {"$and": [rest, {name: current}, {name: condition}]}
        if rest
        else {"$and": [{name: current}, {name: condition}]}
    )


def _comparer(sort: Sequence[SortKey]) -> Callable[[Mapping[str, Any], Mapping[str, Any]], int]:
    """Compare two documents (or cursors) in ``sort`` order; None first, as on MongoDB."""

    def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
        for name, direction in sort:
            left, right = _key(a.get(name)), _key(b.get(name))
            if left != right:
                return direction if left > right else -direction
        return 0

    return compare


def _key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)
