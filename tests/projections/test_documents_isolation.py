"""Callers cannot change stored documents through objects they passed in or got back.

The in-memory store copies on write and on read (cheaply when a document is
flat); MongoDB isolates by serialising. Both must behave the same.
"""

from __future__ import annotations

from typing import Any

from projections.documents import DocumentStore, GuardedWrite, Query


def nested() -> dict[str, Any]:
    return {"tags": ["a", {"deep": 1}], "meta": {"k": "v"}}


async def test_mutating_written_fields_afterwards_changes_nothing(
    documents: DocumentStore,
) -> None:
    fields: dict[str, Any] = {"version": 1, **nested()}
    line: dict[str, Any] = {"_id": "x", **nested()}
    flags: dict[str, Any] = {"position": 1, **nested()}
    await documents.apply("c", [GuardedWrite("w", "version", 1, fields)])
    await documents.insert_new("c", [line])
    await documents.set_fields("c", "s", flags)
    for mutable in (fields, line, flags):
        mutable["tags"][1]["deep"] = 99
        mutable["meta"]["k"] = "changed"
        mutable["extra"] = True
    for doc_id in ("w", "x", "s"):
        stored = await documents.get("c", doc_id)
        assert stored is not None
        assert stored["tags"] == ["a", {"deep": 1}]
        assert stored["meta"] == {"k": "v"}
        assert "extra" not in stored


async def test_mutating_returned_documents_changes_nothing(documents: DocumentStore) -> None:
    await documents.insert_new("c", [{"_id": "x", "n": 1, **nested()}, {"_id": "flat", "n": 2}])
    got = await documents.get("c", "x")
    many = await documents.get_many("c", ["x", "flat"])
    found = await documents.find("c", Query())
    assert got is not None
    for doc in (got, many["x"], many["flat"], *found):
        doc["n"] = 0
        if "tags" in doc:
            doc["tags"][1]["deep"] = 99
            doc["meta"]["k"] = "changed"
    assert await documents.get("c", "x") == {"_id": "x", "n": 1, **nested()}
    assert await documents.get("c", "flat") == {"_id": "flat", "n": 2}


async def test_a_returned_document_does_not_follow_later_writes(documents: DocumentStore) -> None:
    await documents.apply("c", [GuardedWrite("a", "version", 1, {"version": 1, "n": 1})])
    before = await documents.get("c", "a")
    await documents.apply("c", [GuardedWrite("a", "version", 2, {"version": 2, "n": 2})])
    await documents.set_fields("c", "a", {"note": "later"})
    assert before == {"_id": "a", "version": 1, "n": 1}
    assert await documents.get("c", "a") == {"_id": "a", "version": 2, "n": 2, "note": "later"}
