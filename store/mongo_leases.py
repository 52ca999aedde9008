"""``Leases`` on the ``leases`` collection: ``{_id: name, owner, expires_at_ms}``.

Expiry is epoch milliseconds (an int), because datetimes written by update
operators come back as strings on nx-27017 (DESIGN.md section 8). Acquiring is
one ``find_one_and_update`` with upsert whose filter matches a free, expired or
own lease. When the lease is held by someone else the upsert cannot insert the
same ``_id``: real MongoDB raises duplicate key 11000, nx-27017 returns nothing
and writes nothing. Both mean "not acquired".
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from store.driver import Collection, Database, is_duplicate_key
from store.protocol import LeaseHolder
from store.records import MillisClock, epoch_ms


class MongoLeases:
    """Named leases with expiry; ``clock_ms`` (epoch ms) is injectable for tests."""

    def __init__(
        self, database: Database, *, collection: str = "leases", clock_ms: MillisClock = epoch_ms
    ) -> None:
        self.collection: Collection = database[collection]
        self._clock_ms = clock_ms

    async def ensure_indexes(self) -> None:
        """Nothing beyond ``_id``; present for a uniform start-up."""

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = self._clock_ms()
        try:
            doc = await self.collection.find_one_and_update(
                # ``$and`` because nx-27017 0.8.1 applies an update whose filter is
                # ``{_id, $or}`` to another document; this form is also right on MongoDB.
                {
                    "$and": [
                        {"_id": name},
                        {"$or": [{"owner": owner}, {"expires_at_ms": {"$lt": now}}]},
                    ]
                },
                {"$set": {"owner": owner, "expires_at_ms": now + int(ttl_seconds * 1000)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as error:
            if is_duplicate_key(error):
                return False
            raise
        return doc is not None and doc.get("_id") == name and doc.get("owner") == owner

    async def release(self, name: str, owner: str) -> None:
        await self.collection.delete_one({"_id": name, "owner": owner})

    async def holder(self, name: str) -> LeaseHolder | None:
        doc = await self.collection.find_one({"_id": name})
        if doc is None:
            return None
        return LeaseHolder(name, str(doc["owner"]), int(doc["expires_at_ms"]))
