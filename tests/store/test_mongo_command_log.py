"""The Mongo ``CommandLog``: rejections live in ``events`` and legacy ones are moved there."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.protocol import CommandRejection, CommitMetadata, DuplicateCommandError, NewEvent

Database = AsyncDatabase[dict[str, Any]]


async def test_a_rejection_is_an_unsequenced_document_of_no_stream(mongo_db: Database) -> None:
    store, log = MongoEventStore(mongo_db), MongoCommandLog(mongo_db)
    await store.ensure_indexes()
    await log.ensure_indexes()
    rejection = CommandRejection("c-1", "acc-1", "no", "refused", {"n": 1}, "Withdraw:ab")
    await log.record_rejection(rejection)

    doc = await mongo_db["events"].find_one({"metadata.command_id": "c-1"})

    assert doc is not None
    assert doc["_id"] == doc["stream_id"] == "~rejection:c-1"
    assert (doc["version"], doc["events"]) == (0, [])
    assert "pending" not in doc
    assert "position" not in doc
    assert doc["metadata"] == {"command_id": "c-1", "fingerprint": "Withdraw:ab"}
    assert doc["rejection"] == {
        "stream_id": "acc-1",
        "code": "no",
        "message": "refused",
        "details": {"n": 1},
    }
    assert await store.sequence() == 0
    assert await store.head_position() == 0


async def test_legacy_rejections_move_into_events_and_a_commit_stays_the_outcome(
    mongo_db: Database,
) -> None:
    store = MongoEventStore(mongo_db)
    await store.ensure_indexes()
    committed = await store.append(
        "acc-1", "account", 0, [NewEvent("e-1", "Opened", {})], CommitMetadata("c-both")
    )
    await mongo_db["rejections"].insert_many(
        [
            {"_id": f"c-{i}", "stream_id": "acc-2", "code": "no", "message": f"m{i}", "details": {}}
            for i in range(3)
        ]
        + [{"_id": "c-both", "stream_id": "acc-1", "code": "no", "message": "m", "details": {}}]
    )
    log = MongoCommandLog(mongo_db)

    await log.ensure_indexes()
    await log.ensure_indexes()  # idempotent: nothing left to move

    assert await mongo_db["rejections"].count_documents({}) == 0
    for i in range(3):
        assert await log.find_outcome(f"c-{i}") == CommandRejection(
            f"c-{i}", "acc-2", "no", f"m{i}", {}
        )
    assert await log.find_outcome("c-both") == committed
    try:
        await store.append(
            "acc-2", "account", 0, [NewEvent("e-2", "Opened", {})], CommitMetadata("c-0")
        )
    except DuplicateCommandError:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a moved rejection must keep its command id from committing")
