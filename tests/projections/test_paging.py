"""Keyset pages in both directions on both document stores: ties, same-second times, flags.

Given rows whose first sort key ties (and, on nx-27017, ISO times within one
second, which its ``datetime()`` comparison cannot tell apart), when a client
pages forwards with ``first``/``after`` or backwards with ``last``/``before``
across page boundaries, then both walks see every row exactly once in the
same order, and ``hasPreviousPage``/``hasNextPage`` say whether rows lie
beyond each end. On MongoDB the backward query is the forward one with the
sort reversed and the same bounded limit, and the server's plan for it reads
the index (in reverse), not the collection.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from domain.aggregate import InvalidInput
from projections.documents import (
    DocumentStore,
    InvalidCursor,
    Page,
    PageSpec,
    encode_cursor,
    fetch_page,
)
from projections.documents_mongo import TIE_MARGIN, MongoDocumentStore

TIMES = [f"2026-01-01T00:00:00.{micro:06d}+00:00" for micro in (5, 5, 7, 9, 9, 9, 3, 9, 1, 5)]
SPEC = PageSpec("t", [("at", -1), ("_id", -1)], default_size=3, max_size=5)
SIDES = [{"side": "a"}, {"side": "b"}]


def rows() -> list[dict[str, Any]]:
    return [
        {"_id": f"t{i:02d}", "at": at, "side": "a" if i % 3 else "b", "kind": "x"}
        for i, at in enumerate(TIMES)
    ] + [{"_id": "other", "at": TIMES[0], "side": "a", "kind": "y"}]


def expected_ids() -> list[str]:
    wanted = [d for d in rows() if d["kind"] == "x"]
    return [d["_id"] for d in sorted(wanted, key=lambda d: (d["at"], d["_id"]), reverse=True)]


async def page(
    documents: DocumentStore,
    any_of: Sequence[Mapping[str, Any]],
    **args: Any,
) -> Page[str]:
    return await fetch_page(
        documents,
        "c",
        SPEC,
        lambda doc: str(doc["_id"]),
        first=args.get("first"),
        after=args.get("after"),
        last=args.get("last"),
        before=args.get("before"),
        where={"kind": "x"},
        any_of=any_of,
    )


@pytest.mark.parametrize("any_of", [(), SIDES], ids=["where", "any_of"])
async def test_forward_and_backward_walks_see_every_row_once_in_the_same_order(
    documents: DocumentStore, any_of: Sequence[Mapping[str, Any]]
) -> None:
    await documents.insert_new("c", rows())
    expected = expected_ids()

    forward: list[str] = []
    after: str | None = None
    flags: list[tuple[bool, bool]] = []
    for _ in range(len(expected)):
        got = await page(documents, any_of, first=3, after=after)
        forward += got.nodes
        flags.append((got.has_previous_page, got.has_next_page))
        after = got.end_cursor
        if not got.has_next_page:
            break
    assert forward == expected
    assert flags == [(False, True), (True, True), (True, True), (True, False)]

    backward: list[str] = []
    before: str | None = None
    flags = []
    for _ in range(len(expected)):
        got = await page(documents, any_of, last=3, before=before)
        backward = got.nodes + backward
        flags.append((got.has_previous_page, got.has_next_page))
        before = got.start_cursor
        if not got.has_previous_page:
            break
    assert backward == expected
    assert flags == [(True, False), (True, True), (True, True), (False, True)]


async def test_a_cursor_pages_both_ways_from_the_same_row(documents: DocumentStore) -> None:
    """Given the cursor of a row inside a run of ties, before and after split the rows there."""
    await documents.insert_new("c", rows())
    expected = expected_ids()
    middle = (await page(documents, (), first=4)).edges[-1]
    index = expected.index(middle.node)
    assert index == 3

    before = await page(documents, (), last=2, before=middle.cursor)
    assert before.nodes == expected[index - 2 : index]
    assert (before.has_previous_page, before.has_next_page) == (True, True)
    assert before.end_cursor is not None
    # The row just before the cursor, paged forwards again, continues at the cursor's row.
    again = await page(documents, (), first=2, after=before.end_cursor)
    assert again.nodes == expected[index : index + 2]

    tail = await page(documents, (), last=5, before=middle.cursor)
    assert tail.nodes == expected[:index]
    assert (tail.has_previous_page, tail.has_next_page) == (False, True)
    beyond_end = await page(
        documents, (), first=5, after=encode_cursor("t", ["2020-01-01T00:00:00+00:00", "a"])
    )
    assert (beyond_end.nodes, beyond_end.has_previous_page) == ([], True)


async def test_page_sizes_and_directions_are_checked_before_any_read(
    documents: DocumentStore,
) -> None:
    await documents.insert_new("c", rows())
    cursor = (await page(documents, (), first=1)).end_cursor
    refused: list[tuple[dict[str, Any], str]] = [
        ({"first": 1, "last": 1}, "last"),
        ({"after": cursor, "before": cursor}, "before"),
        ({"first": 1, "before": cursor}, "before"),
        ({"last": 1, "after": cursor}, "after"),
        ({"last": 6}, "last"),
        ({"last": -1}, "last"),
        ({"first": 6}, "first"),
    ]
    for args, field in refused:
        with pytest.raises(InvalidInput) as caught:
            await page(documents, (), **args)
        assert caught.value.field == field, args
    with pytest.raises(InvalidCursor) as bad:
        await page(documents, (), last=1, before="not-a-cursor")
    assert bad.value.field == "before"
    with pytest.raises(InvalidCursor):
        await page(documents, (), last=1, before=encode_cursor("other", ["x", "y"]))
    assert (await page(documents, (), last=0)).nodes == []
    assert (await page(documents, (), before=cursor)).nodes == []  # the first row: nothing before
    default = await page(documents, ())
    assert len(default.nodes) == SPEC.default_size


class FindRecorder(monitoring.CommandListener):
    """Records the ``find`` commands a client sends (a PyMongo monitoring hook)."""

    def __init__(self) -> None:
        self.finds: list[dict[str, Any]] = []
        self.returned = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name in ("find", "getMore"):
            batch = event.reply.get("cursor", {})
            self.returned += len(batch.get("firstBatch", batch.get("nextBatch", [])))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_backward_page_on_mongodb_is_one_bounded_query_in_reversed_sort(
    mongo_url: str,
) -> None:
    recorder = FindRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, event_listeners=[recorder]
    )
    try:
        database = client[f"t_{uuid.uuid4().hex[:12]}"]
        documents = MongoDocumentStore(database, alias_ttl=0.0)
        # Ten rows a second: nx-27017 cannot order them within it, a tie margin covers them.
        many = [
            {
                "_id": f"r{i:04d}",
                "at": f"2026-01-01T00:{i // 600:02d}:{i // 10 % 60:02d}.{i:06d}Z",
                "kind": "x",
            }
            for i in range(400)
        ]
        await documents.insert_new("c", many)
        await documents.ensure_index("c", [("kind", 1), ("at", -1)])
        first = await page(documents, (), last=3)
        recorder.finds.clear()
        recorder.returned = 0

        got = await page(documents, (), last=3, before=first.start_cursor)

        assert (len(got.nodes), got.has_previous_page, got.has_next_page) == (3, True, True)
        page_query, beyond_query = recorder.finds
        assert page_query["sort"] == {"at": 1, "_id": 1}
        assert page_query["limit"] == 3 + 1 + TIE_MARGIN
        assert beyond_query["sort"] == {"at": -1, "_id": -1}
        assert beyond_query["limit"] == 1 + TIE_MARGIN
        assert recorder.returned <= 2 * (4 + TIE_MARGIN) + 4
        for sent in (page_query, beyond_query):
            explained = await database.command(
                "explain",
                {k: sent[k] for k in ("find", "filter", "sort", "limit")},
                verbosity="queryPlanner",
            )
            plan = str(explained["queryPlanner"]["winningPlan"])
            # nx-27017 shows SQLite's plan ("SEARCH c USING INDEX ..."), MongoDB its stages.
            assert "USING INDEX" in plan or "IXSCAN" in plan, plan
            assert "COLLSCAN" not in plan, plan
    finally:
        await client.close()
