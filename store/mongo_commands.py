"""``CommandLog`` on the ``events`` collection: a rejection shares the commits' command-id key.

A command id's outcome is the first of its commit (written by
``MongoEventStore.append``) and its rejection (written here) to be inserted:
both carry ``metadata.command_id`` under the one unique ``command_id`` index,
so the loser's insert fails with a duplicate key and it reads the winner's
outcome instead. No transaction, no claim that a paused holder could overtake:
the insert itself decides. Rejection documents are never sequenced or read as
events (``store.mongo_commits``).

Rejections recorded by earlier versions in the ``rejections`` collection
(``_id`` = command id) are moved into the ``events`` collection by
``ensure_indexes`` (a commit for the same id, if any, stays the outcome), so a
lookup stays one query.
"""

from __future__ import annotations

from collections.abc import Callable

from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from store.driver import (
    Collection,
    Database,
    Document,
    is_duplicate_key,
    is_embedded_server,
    to_list,
)
from store.mongo_commits import command_record, rejection_document
from store.mongo_events import (
    command_filter,
    embedded_command_filter,
    ensure_command_index,
)
from store.protocol import CommandRecord, CommandRejection
from store.records import Clock, to_stored_time, utc_now

#: Legacy rejections moved per batch at start-up.
_LEGACY_BATCH = 500


class MongoCommandLog:
    """Command outcomes in ``database[events]``, the ``MongoEventStore``'s collection.

    Call ``await ensure_indexes()`` once before use (idempotent): it ensures the
    shared unique index, picks the server's form of the command-id query and
    moves legacy rejections over.
    """

    def __init__(
        self,
        database: Database,
        *,
        events: str = "events",
        legacy: str = "rejections",
        clock: Clock = utc_now,
    ) -> None:
        self.collection: Collection = database[events]
        self.legacy: Collection = database[legacy]
        self._clock = clock
        self.command_query: Callable[[str], Document] = command_filter

    async def ensure_indexes(self) -> None:
        await ensure_command_index(self.collection)
        if await is_embedded_server(self.collection.database):
            self.command_query = embedded_command_filter
        await self.adopt_legacy()

    async def record_rejection(self, rejection: CommandRejection) -> CommandRecord:
        doc = rejection_document(rejection, to_stored_time(self._clock()))
        try:
            await self.collection.insert_one(doc)
        except PyMongoError as error:
            if not is_duplicate_key(error):
                raise
            stored = await self.find_outcome(rejection.command_id)
            if stored is None:  # pragma: no cover - a duplicate id that then vanished
                raise
            return stored
        return rejection

    async def find_outcome(self, command_id: str) -> CommandRecord | None:
        doc = await self.collection.find_one(self.command_query(command_id))
        return None if doc is None else command_record(doc)

    async def adopt_legacy(self) -> int:
        """Move rejections of the legacy collection into ``events``; returns how many moved.

        Each is inserted first and deleted after, so a crash in between only
        repeats the (idempotent) insert at the next start.
        """
        moved = 0
        while True:
            cursor = self.legacy.find({}).sort("_id", ASCENDING).limit(_LEGACY_BATCH)
            docs = await to_list(cursor)
            if not docs:
                return moved
            for doc in docs:
                await self.record_rejection(_legacy_rejection(doc))
            await self.legacy.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
            moved += len(docs)


def _legacy_rejection(doc: Document) -> CommandRejection:
    """A rejection as earlier versions stored it (no fingerprint)."""
    return CommandRejection(
        command_id=doc["_id"],
        stream_id=doc["stream_id"],
        code=doc["code"],
        message=doc["message"],
        details=doc.get("details") or {},
    )
