"""The ``DocumentStore`` on a PyMongo async database (works on nx-27017 and MongoDB).

Only single-document writes, unique ``_id`` collisions, equality/range filters,
sort and limit are used: what nx-27017 and MongoDB both serve (docs/architecture.md,
section 6). No transactions, no renames.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from projections.documents import ALIASES, Document, FencedOut, GuardedWrite, Query, SortKey
from projections.documents_mongo_query import find_shaped

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
        """See ``projections.documents_mongo_query`` for the shapes sent."""
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
