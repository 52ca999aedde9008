"""One sequencer pass: stamp contiguous global positions on pending commits.

Safe without any lease, for any number of concurrent passes (the lease only
avoids wasted work): a pass reads the head ``h`` *before* the backlog, then
stamps its commits one ordered write at a time at ``h+1, h+1+k1, ...``, each
write conditional on the commit still being pending, and stops at the first
write that fails (duplicate position: someone else got there) or matches
nothing (someone else stamped that commit). Each stamped position is therefore
either the next free one or the start of an existing commit (which the unique
position index refuses), so positions stay 1, 2, 3, ... without holes or
overlaps. A bulk write could not stop at a write that matches nothing, which is
why the writes are sent one by one.

Per-stream order: a commit is stamped only when every earlier commit of its
stream is stamped or stamped earlier in the same pass.
"""

from __future__ import annotations

from collections import defaultdict

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import PyMongoError

from store.driver import Collection, Document, is_duplicate_key, to_list
from store.mongo_commits import PENDING, last_position

DEFAULT_BATCH = 500


async def read_head(events: Collection) -> int:
    """The highest stamped position (0 when none)."""
    doc = await events.find_one(
        {"position": {"$gte": 1}},
        sort=[("position", DESCENDING)],
    )
    return 0 if doc is None else last_position(doc) or 0


async def stamp_pending(events: Collection, batch: int = DEFAULT_BATCH) -> tuple[int, int]:
    """Stamp up to ``batch`` pending commits; return (commits stamped, head afterwards)."""
    head = await read_head(events)
    cursor = events.find({PENDING: {"$gte": 0}}).sort(PENDING, ASCENDING).limit(batch)
    backlog = await to_list(cursor)
    if not backlog:
        return 0, head
    ordered = await _in_stream_order(events, backlog)
    stamped = 0
    for doc in ordered:
        if not await _stamp(events, doc, head + 1):
            return stamped, await read_head(events)
        head += len(doc["events"])
        stamped += 1
    return stamped, head


async def _stamp(events: Collection, doc: Document, position: int) -> bool:
    try:
        result = await events.update_one(
            {"_id": doc["_id"], PENDING: {"$exists": True}},
            {"$set": {"position": position}, "$unset": {PENDING: ""}},
        )
    except PyMongoError as error:
        if is_duplicate_key(error):
            return False
        raise
    return bool(result.matched_count == 1)


async def _in_stream_order(events: Collection, backlog: list[Document]) -> list[Document]:
    """``backlog`` in insertion order, with each stream's commits by version.

    A stream whose chain in the batch has a hole, or whose earliest commit here
    follows a commit still pending outside the batch, is cut there (the rest
    waits for a later pass).
    """
    by_stream: dict[str, list[Document]] = defaultdict(list)
    for doc in backlog:
        by_stream[doc["stream_id"]].append(doc)
    chains = {stream: _chain(docs) for stream, docs in by_stream.items()}
    blocked = await _blocked_streams(events, chains)
    slots: dict[str, int] = defaultdict(int)
    ordered: list[Document] = []
    for doc in backlog:
        stream = doc["stream_id"]
        chain = chains[stream]
        if stream in blocked or slots[stream] >= len(chain):
            continue
        ordered.append(chain[slots[stream]])
        slots[stream] += 1
    return ordered


def _chain(docs: list[Document]) -> list[Document]:
    """Commits sorted by version, cut before the first hole."""
    docs = sorted(docs, key=lambda d: int(d["version"]))
    chain = docs[:1]
    for doc in docs[1:]:
        previous = chain[-1]
        if int(doc["version"]) != int(previous["version"]) + len(previous["events"]):
            break
        chain.append(doc)
    return chain


async def _blocked_streams(events: Collection, chains: dict[str, list[Document]]) -> set[str]:
    """Streams with a pending commit below their earliest commit in the batch."""
    firsts = {stream: int(chain[0]["version"]) for stream, chain in chains.items()}
    later = [stream for stream, first in firsts.items() if first > 1]
    if not later:
        return set()
    cursor = events.find(
        {"stream_id": {"$in": later}, PENDING: {"$gte": 0}},
        projection={"stream_id": 1, "version": 1},
    )
    return {
        doc["stream_id"]
        for doc in await to_list(cursor)
        if int(doc["version"]) < firsts[doc["stream_id"]]
    }
