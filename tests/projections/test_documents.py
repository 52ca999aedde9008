"""One contract for both document stores: guarded writes, keyset queries, aliases."""

from __future__ import annotations

import pytest

from projections.documents import (
    DocumentStore,
    FencedOut,
    GuardedWrite,
    Query,
    WriteBatch,
    sort_values,
)


def write(doc_id: str, version: int, **fields: object) -> GuardedWrite:
    return GuardedWrite(doc_id, "version", version, {"version": version, **fields})


async def test_guarded_write_inserts_then_updates_only_forward(documents: DocumentStore) -> None:
    assert await documents.apply("c", [write("a", 1, n=1)]) == 1
    assert await documents.apply("c", [write("a", 3, n=3)]) == 1
    assert await documents.get("c", "a") == {"_id": "a", "version": 3, "n": 3}


async def test_replayed_or_older_writes_are_already_applied(documents: DocumentStore) -> None:
    await documents.apply("c", [write("a", 2, n=2)])
    # Real MongoDB raises 11000 here, nx-27017 writes nothing: both are "already applied".
    assert await documents.apply("c", [write("a", 2, n=99)]) == 0
    assert await documents.apply("c", [write("a", 1, n=98), write("b", 1, n=1)]) == 1
    assert await documents.get("c", "a") == {"_id": "a", "version": 2, "n": 2}
    assert (await documents.get("c", "b") or {})["n"] == 1


async def test_merged_writes_keep_the_latest_value_of_each_field() -> None:
    batch = WriteBatch()
    batch.add(write("a", 1, owner="ann", balance=0))
    batch.add(write("a", 2, balance=5))
    batch.add(write("b", 1, balance=1))
    merged = {w.doc_id: w for w in batch.writes()}
    assert merged["a"].guard_value == 2
    assert merged["a"].fields == {"version": 2, "owner": "ann", "balance": 5}
    assert len(batch) == 2


async def test_insert_new_skips_taken_ids(documents: DocumentStore) -> None:
    assert await documents.insert_new("c", [{"_id": "x", "n": 1}, {"_id": "y", "n": 2}]) == 2
    assert await documents.insert_new("c", [{"_id": "x", "n": 9}, {"_id": "z", "n": 3}]) == 1
    assert (await documents.get("c", "x") or {})["n"] == 1
    assert await documents.insert_new("c", []) == 0


async def test_get_many_returns_existing_documents(documents: DocumentStore) -> None:
    await documents.insert_new("c", [{"_id": "x"}, {"_id": "y"}])
    assert set(await documents.get_many("c", ["x", "y", "nope"])) == {"x", "y"}
    assert await documents.get_many("c", []) == {}


async def test_find_filters_sorts_and_continues_after_a_cursor(documents: DocumentStore) -> None:
    docs = [
        {"_id": f"d{i}", "owner": "ann" if i % 2 else "bob", "rank": i % 3, "other": i}
        for i in range(10)
    ]
    await documents.insert_new("c", docs)
    sort = [("rank", -1), ("_id", 1)]
    seen: list[str] = []
    after = None
    while True:
        page = await documents.find("c", Query({"owner": "ann"}, (), sort, after, 2))
        if not page:
            break
        seen += [d["_id"] for d in page]
        after = sort_values(page[-1], sort)
    expected = sorted(
        (d for d in docs if d["owner"] == "ann"), key=lambda d: (-int(d["rank"]), d["_id"])
    )
    assert seen == [d["_id"] for d in expected]


async def test_find_any_of_matches_alternatives(documents: DocumentStore) -> None:
    await documents.insert_new(
        "c", [{"_id": "1", "a": "x", "b": "y"}, {"_id": "2", "a": "z", "b": "x"}, {"_id": "3"}]
    )
    found = await documents.find("c", Query(any_of=[{"a": "x"}, {"b": "x"}]))
    assert [d["_id"] for d in found] == ["1", "2"]


async def test_set_fields_upserts_without_guard(documents: DocumentStore) -> None:
    await documents.set_fields("c", "k", {"position": 3})
    await documents.set_fields("c", "k", {"state": "running"})
    assert await documents.get("c", "k") == {"_id": "k", "position": 3, "state": "running"}


async def test_swap_points_a_logical_name_elsewhere_and_drop_removes(
    documents: DocumentStore,
) -> None:
    assert await documents.resolve("accounts") == "accounts"
    await documents.insert_new("accounts__r1", [{"_id": "new"}])
    assert await documents.swap("accounts", "accounts__r1") == "accounts"
    assert await documents.resolve("accounts", fresh=True) == "accounts__r1"
    await documents.drop("accounts__r1")
    assert await documents.find("accounts__r1", Query()) == []
    await documents.ensure_index("accounts__r1", [("owner", 1)])
    await documents.delete("accounts__r1", "missing")


async def test_cursor_pages_through_ties_and_same_second_times(documents: DocumentStore) -> None:
    """Ties on the first sort key and ISO times within one second page without gaps."""
    times = [f"2026-01-01T00:00:00.{micro:06d}+00:00" for micro in (5, 5, 7, 9, 9, 9, 3)]
    docs = [
        {"_id": f"t{i}", "at": at, "side": "a" if i % 2 else "b", "kind": "x"}
        for i, at in enumerate(times)
    ]
    await documents.insert_new("c", docs)
    sort = [("at", -1), ("_id", -1)]
    alternatives = [{"side": "a"}, {"side": "b"}]
    for any_of in ((), alternatives):
        seen: list[str] = []
        after = None
        for _ in range(len(docs) + 1):
            page = await documents.find("c", Query({"kind": "x"}, any_of, sort, after, 2))
            if not page:
                break
            seen += [d["_id"] for d in page]
            after = sort_values(page[-1], sort)
        expected = sorted(docs, key=lambda d: (d["at"], d["_id"]), reverse=True)
        assert seen == [d["_id"] for d in expected]


async def test_a_fenced_alias_switch_refuses_an_older_epoch(documents: DocumentStore) -> None:
    await documents.swap("ledger", "ledger__r0")  # an alias written before epochs existed
    assert await documents.swap("ledger", "ledger__r1", epoch=5) == "ledger__r0"
    with pytest.raises(FencedOut):
        await documents.swap("ledger", "ledger__r9", epoch=4)
    assert await documents.resolve("ledger", fresh=True) == "ledger__r1"
    assert await documents.swap("ledger", "ledger__r1", epoch=5) == "ledger__r1"  # a retry
    assert await documents.swap("ledger", "ledger__r2", epoch=6) == "ledger__r1"
    assert await documents.swap("fresh", "fresh__r1", epoch=1) == "fresh"


async def test_update_if_is_one_conditional_write_on_an_existing_document(
    documents: DocumentStore,
) -> None:
    await documents.set_fields("c", "x", {"position": 3, "epoch": 2})
    fields = {"position": 5}
    assert not await documents.update_if("c", "x", fields, equal={"epoch": 1})
    assert not await documents.update_if(
        "c", "x", fields, equal={"epoch": 2}, below={"position": 3}
    )
    assert await documents.update_if("c", "x", fields, equal={"epoch": 2}, below={"position": 5})
    assert not await documents.update_if("c", "missing", fields)
    assert await documents.get("c", "missing") is None
    stored = await documents.get("c", "x")
    assert stored is not None
    assert (stored["position"], stored["epoch"]) == (5, 2)
