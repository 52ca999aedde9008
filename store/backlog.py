"""Which pending commits a sequencer pass may stamp, and in what order.

Insertion order (the ``pending`` marker, epoch ms at insert) across streams,
version order within each stream, and never a commit before an earlier commit
of its own stream: a stream whose chain in the batch has a hole, or whose
earliest commit here follows a commit still pending outside the batch, is cut
there and waits for a later pass. (Clocks of different processes may disagree,
so the marker alone cannot be trusted for a stream's order.)
"""

from __future__ import annotations

from collections import defaultdict

from pymongo import ASCENDING

from store.driver import Collection, Document, to_list
from store.mongo_commits import PENDING


async def read_backlog(events: Collection, batch: int) -> list[Document]:
    """Up to ``batch`` pending commits, oldest marker first, through the pending index."""
    cursor = events.find({PENDING: {"$gte": 0}}).sort(PENDING, ASCENDING).limit(batch)
    cursor = cursor.batch_size(batch)  # one round trip, not one per 101 documents
    return await to_list(cursor)


async def in_stream_order(events: Collection, backlog: list[Document]) -> list[Document]:
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
    # Only versions below some stream's first can block: without this bound every
    # pass would read back each stream's whole pending tail (the backlog, not the batch).
    below = max(firsts[stream] for stream in later)
    cursor = events.find(
        {"stream_id": {"$in": later}, PENDING: {"$gte": 0}, "version": {"$lt": below}},
        projection={"stream_id": 1, "version": 1},
    )
    return {
        doc["stream_id"]
        for doc in await to_list(cursor)
        if int(doc["version"]) < firsts[doc["stream_id"]]
    }
