"""Which pending commits a sequencer pass may stamp, and in what order.

A pass reads a batch of the backlog through the ``pending`` index (oldest
marker first) and stamps, for every stream in the batch, that stream's
pending commits from its *lowest pending version* upwards, in version order,
never a commit before an earlier commit of its stream.

The marker is the writer's wall clock at insert, and clocks disagree: a commit
from a process whose clock runs ahead sorts late, so the batch may hold only
later commits of its stream. Such a stream's lowest pending commits are read
by version and stamped first, in the same pass. The lowest pending commit of a
stream is always stampable (every commit below it is stamped), so every pass
over a non-empty backlog stamps something: progress never depends on a
writer's clock or on the size of the backlog. The marker only decides which
streams a pass looks at first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from pymongo import ASCENDING

from store.driver import Collection, Document, to_list
from store.mongo_commits import PENDING


async def read_backlog(events: Collection, batch: int) -> list[Document]:
    """Up to ``batch`` pending commits, oldest marker first, through the pending index."""
    cursor = events.find({PENDING: {"$gte": 0}}).sort(PENDING, ASCENDING).limit(batch)
    cursor = cursor.batch_size(batch)  # one round trip, not one per 101 documents
    return await to_list(cursor)


async def in_stream_order(
    events: Collection,
    backlog: list[Document],
    batch: int | None = None,
    *,
    stamped_ends: Mapping[str, int] | None = None,
) -> list[Document]:
    """``backlog`` in insertion order, each stream's commits by version from its lowest pending.

    A stream whose earliest commit here follows commits still pending outside
    the batch gets those commits (up to ``batch`` of them in all, lowest first)
    in front of its own. A chain with a hole is cut there; a stream whose
    lowest pending commit could not be read this time waits for a later pass.

    ``stamped_ends``: the last stamped version of some streams, as the caller
    saw them stamped. A stream whose earliest commit here starts right after it
    has nothing pending below (commits are stamped in version order), so it
    needs no query; the query is skipped when every stream is such a one.
    """
    by_stream: dict[str, list[Document]] = defaultdict(list)
    for doc in backlog:
        by_stream[doc["stream_id"]].append(doc)
    earlier, unknown = await _earlier_pending(
        events, by_stream, batch or len(backlog), stamped_ends or {}
    )
    chains = {
        stream: _chain(earlier.get(stream, []) + docs)
        for stream, docs in by_stream.items()
        if stream not in unknown
    }
    slots: dict[str, int] = defaultdict(int)
    ordered: list[Document] = []
    for doc in backlog:
        stream = doc["stream_id"]
        chain = chains.get(stream)
        if chain is None or slots[stream] >= len(chain):
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


async def _earlier_pending(
    events: Collection,
    by_stream: dict[str, list[Document]],
    limit: int,
    stamped_ends: Mapping[str, int],
) -> tuple[dict[str, list[Document]], set[str]]:
    """Pending commits below each stream's earliest in the batch, and streams not known.

    One query, sorted by stream and version and bounded by ``limit``: every
    stream it reaches gets its lowest pending commits; streams beyond the last
    one reached (when the limit cut the answer) are returned as unknown.
    """
    firsts = {stream: min(int(d["version"]) for d in docs) for stream, docs in by_stream.items()}
    later = sorted(
        stream
        for stream, first in firsts.items()
        if first > 1 and stamped_ends.get(stream) != first - 1
    )
    if not later:
        return {}, set()
    # Only versions below some stream's first can come before it: without this
    # bound the query would read each stream's whole pending tail.
    below = max(firsts[stream] for stream in later)
    cursor = (
        events.find({"stream_id": {"$in": later}, PENDING: {"$gte": 0}, "version": {"$lt": below}})
        .sort([("stream_id", ASCENDING), ("version", ASCENDING)])
        .limit(limit)
        .batch_size(limit)
    )
    found = await to_list(cursor)
    earlier: dict[str, list[Document]] = defaultdict(list)
    for doc in found:
        if int(doc["version"]) < firsts[doc["stream_id"]]:
            earlier[doc["stream_id"]].append(doc)
    unknown: set[str] = set()
    if len(found) >= limit:
        last = str(found[-1]["stream_id"])
        unknown = {stream for stream in later if stream > last}
    return dict(earlier), unknown
