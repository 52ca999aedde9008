"""``CommandLog`` on the ``rejections`` collection: ``_id`` is the command id.

The first rejection inserted for an id wins; a later insert hits the ``_id``
(duplicate key) and returns the stored one instead.
"""

from __future__ import annotations

from pymongo.errors import PyMongoError

from store.driver import Collection, Database, Document, is_duplicate_key
from store.protocol import CommandRejection


class MongoCommandLog:
    """Durable record of rejected commands (no indexes beyond ``_id``)."""

    def __init__(self, database: Database, *, collection: str = "rejections") -> None:
        self.collection: Collection = database[collection]

    async def ensure_indexes(self) -> None:
        """Nothing beyond ``_id``; present for a uniform start-up."""

    async def record_rejection(self, rejection: CommandRejection) -> CommandRejection:
        try:
            await self.collection.insert_one(
                {
                    "_id": rejection.command_id,
                    "stream_id": rejection.stream_id,
                    "code": rejection.code,
                    "message": rejection.message,
                    "details": dict(rejection.details),
                }
            )
        except PyMongoError as error:
            if not is_duplicate_key(error):
                raise
            stored = await self.find_rejection(rejection.command_id)
            if stored is None:  # pragma: no cover - a duplicate id that then vanished
                raise
            return stored
        return rejection

    async def find_rejection(self, command_id: str) -> CommandRejection | None:
        doc = await self.collection.find_one({"_id": command_id})
        return None if doc is None else _rejection(doc)


def _rejection(doc: Document) -> CommandRejection:
    return CommandRejection(
        command_id=doc["_id"],
        stream_id=doc["stream_id"],
        code=doc["code"],
        message=doc["message"],
        details=doc.get("details") or {},
    )
