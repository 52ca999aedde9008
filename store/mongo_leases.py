"""``Leases`` on the ``leases`` collection: ``{_id: name, owner, epoch, expires_at_ms}``.

Expiry is epoch milliseconds (an int), because datetimes written by update
operators come back as strings on nx-27017 (see docs/architecture.md section 6).

One clock judges expiry: the database server's (``ServerClock``), never the
caller's wall clock. nx-27017 0.8.1 has no update pipelines and matches
nothing for ``$expr`` with ``$$NOW``, so ``$$NOW`` cannot be used; the server's
time is read with ``hello`` (``localTime``, on nx-27017 and MongoDB alike) and
carried forward by this process's monotonic clock, which no wall-clock skew
or step changes.

- Taking (``acquire``) is one ``find_one_and_update`` with upsert whose filter
  matches a free, released, expired or own lease; it sets owner and expiry and
  increments ``epoch``. When another owner holds it live, the upsert cannot
  insert the same ``_id``: MongoDB raises duplicate key 11000, nx-27017 returns
  nothing and writes nothing. Both mean "not acquired".
- Renewing filters on ``{_id, owner, epoch}``: it fails once anyone (even the
  same owner) took the lease again.
- Releasing sets the expiry to 0 and keeps the document, so epochs never go
  back.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from store.driver import Collection, Database, is_duplicate_key
from store.protocol import LeaseHolder
from store.records import MillisClock

RELEASED = 0  # ``expires_at_ms`` of a released lease


class ServerClock:
    """The database server's clock: ``hello.localTime`` carried forward monotonically.

    Read again every ``resync_seconds``. The error is at most half the round
    trip of the ``hello`` it was read with, plus the drift of the monotonic
    clock since then.
    """

    def __init__(self, database: Database, *, resync_seconds: float = 30.0) -> None:
        self._database = database
        self._resync = resync_seconds
        self._server_ms = 0
        self._at: float | None = None  # monotonic time the server read ``_server_ms``

    async def now_ms(self) -> int:
        if self._at is None or time.monotonic() - self._at > self._resync:
            await self.sync()
        assert self._at is not None
        return self._server_ms + int((time.monotonic() - self._at) * 1000)

    async def sync(self) -> None:
        sent = time.monotonic()
        reply: dict[str, Any] = await self._database.command("hello")
        received = time.monotonic()
        self._server_ms = _epoch_ms(reply["localTime"])
        self._at = (sent + received) / 2  # the reply was made somewhere in between


def _epoch_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


class MongoLeases:
    """Named, fenced leases judged by the server's clock.

    ``clock_ms`` replaces that clock in tests that move time by hand.
    """

    def __init__(
        self,
        database: Database,
        *,
        collection: str = "leases",
        clock_ms: MillisClock | None = None,
    ) -> None:
        self.collection: Collection = database[collection]
        self._fixed_clock = clock_ms
        self._server_clock = ServerClock(database)

    async def ensure_indexes(self) -> None:
        """Nothing beyond ``_id``; present for a uniform start-up."""

    async def clock_ms(self) -> int:
        if self._fixed_clock is not None:
            return self._fixed_clock()
        return await self._server_clock.now_ms()

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> LeaseHolder | None:
        now = await self.clock_ms()
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
                {
                    "$set": {"owner": owner, "expires_at_ms": now + int(ttl_seconds * 1000)},
                    "$inc": {"epoch": 1},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as error:
            if is_duplicate_key(error):
                return None
            raise
        if doc is None or doc.get("_id") != name or doc.get("owner") != owner:
            return None
        return _holder(doc, now)

    async def renew(self, held: LeaseHolder, ttl_seconds: float) -> LeaseHolder | None:
        now = await self.clock_ms()
        doc = await self.collection.find_one_and_update(
            {"_id": held.name, "owner": held.owner, "epoch": held.epoch},
            {"$set": {"expires_at_ms": now + int(ttl_seconds * 1000)}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None or doc.get("_id") != held.name:
            return None
        return _holder(doc, now)

    async def release(self, name: str, owner: str) -> None:
        await self.collection.update_one(
            {"_id": name, "owner": owner}, {"$set": {"expires_at_ms": RELEASED}}
        )

    async def holder(self, name: str) -> LeaseHolder | None:
        doc = await self.collection.find_one({"_id": name})
        if doc is None or int(doc.get("expires_at_ms", RELEASED)) == RELEASED:
            return None
        return _holder(doc, await self.clock_ms())


def _holder(doc: dict[str, Any], now: int) -> LeaseHolder:
    expires = int(doc["expires_at_ms"])
    return LeaseHolder(
        str(doc["_id"]), str(doc["owner"]), expires, int(doc.get("epoch", 0)), expires >= now
    )
