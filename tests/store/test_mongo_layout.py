"""The ``events`` documents and indexes are exactly those docs/architecture.md section 2 shows."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from store.mongo_commits import stream_filter
from store.mongo_events import (
    COMMAND_ID_PARTIAL,
    MongoEventStore,
    command_filter,
    embedded_command_filter,
)
from store.notifier import HeadNotifier
from store.protocol import CommitMetadata, ConcurrencyError, NewEvent


async def test_one_document_per_commit_pending_until_stamped(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoEventStore(mongo_db)
    await store.ensure_indexes()
    await store.ensure_indexes()  # idempotent
    meta = CommitMetadata(command_id="c-1", correlation_id="r", causation_id="x", actor="ann")
    events = [NewEvent("e1", "Opened", {"a": 1}), NewEvent("e2", "Moved", {"b": 2}, 2)]
    result = await store.append("acc-1", "account", 0, events, meta)
    assert result.version == 2
    doc = await mongo_db["events"].find_one({"_id": "acc-1:1"})
    assert doc is not None
    assert doc["stream_id"] == "acc-1"
    assert doc["stream_type"] == "account"
    assert doc["version"] == 1
    assert doc["events"] == [
        {"event_id": "e1", "type": "Opened", "schema_version": 1, "data": {"a": 1}},
        {"event_id": "e2", "type": "Moved", "schema_version": 2, "data": {"b": 2}},
    ]
    assert doc["metadata"] == {
        "command_id": "c-1",
        "correlation_id": "r",
        "causation_id": "x",
        "actor": "ann",
    }
    assert isinstance(doc["recorded_at"], datetime)  # a real datetime, not a string
    assert "position" not in doc
    assert isinstance(doc["pending"], int)
    assert await store.sequence() == 1
    stamped = await mongo_db["events"].find_one({"_id": "acc-1:1"})
    assert stamped is not None
    assert stamped["position"] == 1
    assert "pending" not in stamped


async def test_indexes_exist_once_and_a_fresh_store_still_refuses_stale_versions(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    first = MongoEventStore(mongo_db)
    await first.ensure_indexes()
    keys = [
        tuple(index["key"]) for index in (await mongo_db["events"].index_information()).values()
    ]
    for wanted in [
        (("stream_id", 1), ("version", 1)),
        (("metadata.command_id", 1),),
        (("position", 1),),
        (("pending", 1),),
    ]:
        assert keys.count(wanted) == 1, wanted
    await first.append("s", "t", 0, [NewEvent("e1", "T", {}), NewEvent("e2", "T", {})])
    await first.append("s", "t", 2, [NewEvent("e3", "T", {})])
    fresh = MongoEventStore(mongo_db)  # another process: knows no commit boundaries
    for expected in (1, 4):
        with pytest.raises(ConcurrencyError) as caught:
            await fresh.append("s", "t", expected, [NewEvent("x", "T", {})])
        assert caught.value.actual_version == 3
    assert [e.event_id for e in await fresh.read_stream("s")] == ["e1", "e2", "e3"]


async def test_head_notifier_wait_and_advance() -> None:
    notifier = HeadNotifier()
    assert await notifier.wait_beyond(0, 0.01) == 0
    waiters = [asyncio.create_task(notifier.wait_beyond(p, 5.0)) for p in (0, 1, 2)]
    await asyncio.sleep(0)
    notifier.advance(2)
    notifier.advance(1)  # never lowers the head
    assert notifier.head == 2
    assert await asyncio.wait_for(waiters[0], 5) == 2
    assert await asyncio.wait_for(waiters[1], 5) == 2
    assert not waiters[2].done()
    notifier.advance(3)
    assert await asyncio.wait_for(waiters[2], 5) == 3
    assert await notifier.wait_beyond(2, 0) == 3


def test_command_id_lookups_imply_the_partial_index_filter() -> None:
    # Real MongoDB uses a partial index only for queries that literally contain
    # its filter; nx-27017 ignores partial filters, so check the query's shape.
    condition = command_filter("c-1")["metadata.command_id"]
    assert isinstance(condition, dict)
    assert condition["$eq"] == "c-1"
    assert COMMAND_ID_PARTIAL.items() <= condition.items()


def test_stream_lookups_use_explicit_eq() -> None:
    # nx-27017 compiles a bare string equality into "equals or array contains",
    # which no SQLite expression index serves (a full scan per stream read);
    # ``$eq`` compiles to an indexed ``=`` and means the same on MongoDB.
    assert stream_filter("acc-1") == {"stream_id": {"$eq": "acc-1"}}


async def test_command_ids_are_looked_up_in_the_servers_indexed_form(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # The embedded server evaluates $type in Python over every commit; it gets
    # the plain $eq form (same matches), real MongoDB keeps command_filter.
    store = MongoEventStore(mongo_db)
    assert store.command_query is command_filter
    await store.ensure_indexes()
    assert store.command_query is embedded_command_filter
    meta = CommitMetadata(command_id="c-9", correlation_id=None, causation_id=None, actor=None)
    await store.append("acc-9", "account", 0, [NewEvent("e9", "Opened", {})], meta)
    for query in (command_filter("c-9"), embedded_command_filter("c-9")):
        found = await mongo_db["events"].find_one(query, projection={"_id": 1})
        assert found == {"_id": "acc-9:1"}
    assert await mongo_db["events"].find_one(embedded_command_filter("c-10")) is None


async def test_reads_from_a_known_commit_end_see_other_writers_commits(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # A store skips the straddling-commit lookup when it saw a commit end right
    # before from_version; commits written since by others must still appear.
    mine, theirs = MongoEventStore(mongo_db), MongoEventStore(mongo_db)
    await mine.ensure_indexes()
    await mine.append("s", "t", 0, [NewEvent("e1", "T", {}), NewEvent("e2", "T", {})])
    assert await mine.read_stream("s", 3) == []
    three = [NewEvent("e3", "T", {}), NewEvent("e4", "T", {}), NewEvent("e5", "T", {})]
    await theirs.append("s", "t", 2, three)
    assert [e.version for e in await mine.read_stream("s", 3)] == [3, 4, 5]
    assert [e.version for e in await theirs.read_stream("s", 4)] == [4, 5]
    assert [e.version for e in await mine.read_stream("s", 2, 4)] == [2, 3, 4]
