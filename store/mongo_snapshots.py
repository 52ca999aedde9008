"""``SnapshotStore`` on the ``snapshots`` collection.

``{_id: "<stream_id>:<version>", stream_id, stream_type, version, schema_version,
state}``; saving a version again replaces it (a newer snapshot shape wins).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

from store.driver import Collection, Database, Document
from store.mongo_commits import stream_filter
from store.protocol import Snapshot


class MongoSnapshotStore:
    """Snapshots of aggregate state; call ``await ensure_indexes()`` once."""

    def __init__(self, database: Database, *, collection: str = "snapshots") -> None:
        self.collection: Collection = database[collection]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("stream_id", ASCENDING), ("version", ASCENDING)], name="stream_version"
        )

    async def save(self, snapshot: Snapshot) -> None:
        await self.collection.update_one(
            {"_id": f"{snapshot.stream_id}:{snapshot.version}"},
            {
                "$set": {
                    "stream_id": snapshot.stream_id,
                    "stream_type": snapshot.stream_type,
                    "version": snapshot.version,
                    "schema_version": snapshot.schema_version,
                    "state": dict(snapshot.state),
                }
            },
            upsert=True,
        )

    async def latest(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        query: Document = stream_filter(stream_id)
        if max_version is not None:
            query["version"] = {"$lte": max_version}
        doc = await self.collection.find_one(query, sort=[("version", DESCENDING)])
        if doc is None:
            return None
        return Snapshot(
            stream_id=doc["stream_id"],
            stream_type=doc["stream_type"],
            version=int(doc["version"]),
            schema_version=int(doc["schema_version"]),
            state=doc["state"],
        )
