"""The ``DocumentStore`` on a PyMongo async database (works on nx-27017 and MongoDB).

Public surface: ``MongoDocumentStore``; ``find_shaped`` and ``TIE_MARGIN`` (the
query shapes ``find`` sends, below).

Only single-document writes, unique ``_id`` collisions, equality/range filters,
sort and limit are used: what nx-27017 and MongoDB both serve (docs/architecture.md,
section 6). No transactions, no renames.

Query shapes that an index can serve on both servers: nx-27017 serves
``{field: {"$eq": v}}`` and single-field ranges from an index, but evaluates
``$or`` and ``$and`` in Python over the whole collection, turns a bare equality
into an array containment test no index serves, and compares ISO-8601 strings
through SQLite's ``datetime()``, which drops the fraction of a second. So:

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

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from projections.documents import (
    ALIASES,
    Document,
    FencedOut,
    GuardedWrite,
    Query,
    SortKey,
    compare,
)

DUPLICATE_KEY = 11000


class MongoDocumentStore:
    """Read-model collections in ``database``; aliases cached ``alias_ttl`` seconds."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]], *, alias_ttl: float = 0.5) -> None:
        self._db = database
        self._alias_ttl = alias_ttl
        self._alias_cache: dict[str, tuple[str, float]] = {}

    async def get(self, collection: str, doc_id: str) -> Document | None:
        return await self._db[collection].find_one({"_id": {"$eq": doc_id}})

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        if not doc_ids:
            return {}
        cursor = self._db[collection].find({"_id": {"$in": list(doc_ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def apply(self, collection: str, writes: Sequence[GuardedWrite]) -> int:
        if not writes:
            return 0
        requests = [
            UpdateOne(
                {"_id": w.doc_id, w.guard_field: {"$lt": w.guard_value}},
                {"$set": {k: v for k, v in w.fields.items() if k != "_id"}},
                upsert=True,
            )
            for w in writes
        ]
        try:
            result = await self._db[collection].bulk_write(requests, ordered=False)
        except BulkWriteError as error:
            # 11000: the guard did not match an existing document, i.e. already applied.
            _reraise_unless_duplicates(error)
            details = error.details
            return int(details.get("nMatched", 0)) + int(details.get("nUpserted", 0))
        return result.matched_count + result.upserted_count

    async def insert_new(self, collection: str, docs: Sequence[Mapping[str, Any]]) -> int:
        if not docs:
            return 0
        try:
            result = await self._db[collection].insert_many([dict(d) for d in docs], ordered=False)
        except BulkWriteError as error:
            _reraise_unless_duplicates(error)
            return int(error.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def set_fields(self, collection: str, doc_id: str, fields: Mapping[str, Any]) -> None:
        await self._db[collection].update_one({"_id": doc_id}, {"$set": dict(fields)}, upsert=True)

    async def update_if(
        self,
        collection: str,
        doc_id: str,
        fields: Mapping[str, Any],
        *,
        equal: Mapping[str, int] | None = None,
        below: Mapping[str, int] | None = None,
    ) -> bool:
        filter_: dict[str, Any] = {"_id": {"$eq": doc_id}}
        filter_.update({k: {"$eq": v} for k, v in (equal or {}).items()})
        for name, limit in (below or {}).items():
            filter_[name] = {**filter_.get(name, {}), "$lt": limit}
        result = await self._db[collection].update_one(filter_, {"$set": dict(fields)})
        return result.matched_count == 1

    async def find(self, collection: str, query: Query) -> list[Document]:
        """See the module docstring for the shapes sent."""
        sort = list(query.sort)

        async def fetch(filter_: dict[str, Any], limit: int | None) -> list[Document]:
            cursor = self._db[collection].find(filter_).sort(sort)
            if limit is not None:
                cursor = cursor.limit(limit).batch_size(limit)
            return [doc async for doc in cursor]

        return await find_shaped(fetch, query)

    async def delete(self, collection: str, doc_id: str) -> None:
        await self._db[collection].delete_one({"_id": doc_id})

    async def drop(self, collection: str) -> None:
        await self._db.drop_collection(collection)

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        await self._db[collection].create_index(list(keys))

    async def resolve(self, logical: str, *, fresh: bool = False) -> str:
        cached = self._alias_cache.get(logical)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[1] < self._alias_ttl:
            return cached[0]
        doc = await self._db[ALIASES].find_one({"_id": logical})
        physical = str(doc["collection"]) if doc is not None else logical
        self._alias_cache[logical] = (physical, now)
        return physical

    async def swap(self, logical: str, physical: str, *, epoch: int | None = None) -> str:
        old = await self.resolve(logical, fresh=True)
        if epoch is None:
            await self._db[ALIASES].update_one(
                {"_id": logical}, {"$set": {"collection": physical}}, upsert=True
            )
        else:
            await self._fenced_swap(logical, physical, epoch)
        self._alias_cache[logical] = (physical, time.monotonic())
        return old

    async def _fenced_swap(self, logical: str, physical: str, epoch: int) -> None:
        """Switch unless the alias records a newer epoch (11000 on MongoDB, no write on nx)."""
        not_newer = [{"epoch": {"$lte": epoch}}, {"epoch": {"$exists": False}}]
        with contextlib.suppress(DuplicateKeyError):
            await self._db[ALIASES].update_one(
                {"$and": [{"_id": logical}, {"$or": not_newer}]},  # see docs section 6
                {"$set": {"collection": physical, "epoch": epoch}},
                upsert=True,
            )
        doc = await self._db[ALIASES].find_one({"_id": logical})
        if doc is None or (doc.get("collection"), doc.get("epoch")) != (physical, epoch):
            raise FencedOut(f"the alias {logical!r} was switched under a newer epoch")


def _reraise_unless_duplicates(error: BulkWriteError) -> None:
    codes = {e.get("code") for e in error.details.get("writeErrors", [])}
    if codes - {DUPLICATE_KEY} or error.details.get("writeConcernErrors"):
        raise error


# -- query shapes --------------------------------------------------------------

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
    ordered = list(found.values())
    ordered.sort(key=functools.cmp_to_key(lambda a, b: compare(a, b, query.sort)))
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
    fetch_size = None if query.limit is None else query.limit + TIE_MARGIN
    while True:
        docs = await fetch(bounded, fetch_size)
        kept = [doc for doc in docs if compare(doc, cursor, query.sort) > 0]
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
