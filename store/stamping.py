"""One sequencer pass: give pending commits contiguous global positions.

Positions are first *claimed* in the ``positions`` collection, then *copied*
onto the commits in ``events``, where readers see them.

- Claim: ``{_id: first position, position: the same, commit: commit _id,
  count: events}``, with unique indexes on ``commit`` and ``position`` (queries
  sort on ``position``: nx-27017 orders integer ``_id`` values as strings).
  A pass reads the claimed head ``H`` before the backlog and inserts its
  claims at ``H+1, H+1+k1, ...`` with one ordered ``insert_many`` that stops
  at the first failure: a taken position or an already claimed commit. An
  insert never "matches nothing", so every successful claim starts right
  after the previous successful one, or at ``H+1``, which is free or the
  start of an existing claim (refused). Hence claims tile 1, 2, 3, ... with
  no hole and no overlap, whatever number of passes race, lease or no lease.
  (An ordered ``bulk_write`` of conditional updates cannot give this: an
  update whose filter matches nothing does not stop the batch, and the next
  write would then be placed on a guess.)
- Copy: ``position`` is set (and the ``pending`` marker removed) on the commits
  in position order with ordered writes, always starting from the lowest claim
  not yet copied, so a reader that sees position p in ``events`` has seen every
  position below it. Copies are idempotent (the claimed value is the only one
  ever written), so a pass that died between claiming and copying is finished
  by the next one. ``events.position`` keeps its unique index as a safety net.

On a sharded cluster ``events`` is sharded by ``stream_id`` and ``positions`` stays
unsharded, keeping the unique position guarantee (docs/architecture.md, section 5).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from store.backlog import in_stream_order, read_backlog
from store.driver import Collection, Document, to_list
from store.mongo_commits import PENDING, last_position

DEFAULT_BATCH = 500
_COPY_LIMIT = 5000
_ENDS_LIMIT = 100_000
# How long a Stamper may go on claiming this process's own commits without reading
# the backlog (``Stamper`` below): what a commit from another process may wait longer
# while this process keeps appending. Well inside the 1 s bound an idle sequencer's
# poll gives such a commit anyway (store.sequencer).
FULL_PASS_EVERY = 0.25


async def read_head(events: Collection) -> int:
    """The highest position visible in ``events`` (0 when none)."""
    doc = await events.find_one({"position": {"$gte": 1}}, sort=[("position", DESCENDING)])
    return 0 if doc is None else last_position(doc) or 0


async def claimed_head(positions: Collection) -> int:
    """The highest claimed position (0 when none)."""
    doc = await positions.find_one({}, sort=[("position", DESCENDING)])
    return 0 if doc is None else int(doc["position"]) + int(doc["count"]) - 1


async def stamp_pending(
    events: Collection, positions: Collection, batch: int = DEFAULT_BATCH
) -> tuple[int, int]:
    """Claim and copy positions for up to ``batch`` pending commits.

    Returns (commits claimed by this call, highest position visible afterwards).
    """
    claimed = await claimed_head(positions)
    visible = await copy_claims(events, positions, claimed)
    if visible < claimed:  # a long copy backlog: finish it before claiming more
        return 0, visible
    ordered = await in_stream_order(events, await read_backlog(events, batch))
    claims = _claims(ordered, claimed + 1)
    made = await _insert_claims(positions, claims)
    if made:
        await _copy(events, claims[:made])
        visible = claims[made - 1]["position"] + claims[made - 1]["count"] - 1
    return made, visible


class Stamper:
    """Passes over one events collection that remember the heads they saw.

    ``stamp_pending`` reads the claimed and the visible head before every pass:
    two queries, which an idle sequencer paid on each poll. A ``Stamper`` keeps
    the head it left behind (every claim up to it copied) and starts the next
    pass with the backlog read alone. The remembered head only saves reads, it
    is never trusted for order: a claim placed after a stale head is refused by
    the unique ``position`` index (claims tile, so the position after the true
    head is the only free one), and then, on any error, or once the head is
    ``trust_seconds`` old (another pass may have stamped meanwhile, which the
    backlog would not show), the next pass reads both heads as
    ``stamp_pending`` does.

    Local passes: the store hands over the commits appended in this process
    (``note_local``), as inserted. A pass within ``full_pass_every`` seconds of
    the last pass that read the backlog claims those alone, without reading it,
    when each one is the next commit of its stream: version 1, or right after
    the end this stamper stamped last (or a commit before it in the same pass).
    Every commit below such a commit is stamped, so per-stream order holds; the
    order across streams is free. Anything else (a commit following one this
    stamper did not stamp, a head not trusted, a refused claim) makes it a full
    pass. A commit already claimed elsewhere is refused by the unique
    ``commit`` index, as in a full pass. Commits of other processes are read by
    full passes only, so while this process keeps appending they wait up to
    ``full_pass_every`` more than before.
    """

    def __init__(
        self,
        events: Collection,
        positions: Collection,
        *,
        batch: int = DEFAULT_BATCH,
        trust_seconds: float = 3.0,
        full_pass_every: float = FULL_PASS_EVERY,
        on_claimed: Callable[[list[Document]], None] | None = None,
    ) -> None:
        self.events = events
        # Called with the commits a pass claimed, each with its first position, as soon
        # as the claims are in: a claimed position is final, the copy only shows it.
        self.on_claimed = on_claimed
        self.positions = positions
        self.batch = batch
        self.trust_seconds = trust_seconds
        self._head: int | None = None  # claimed and copied up to here, as of _seen
        self._seen = 0.0
        # The last version this stamper stamped per stream: a pending commit right
        # after it has no earlier pending commit, so its pass needs no query for them.
        self._ends: dict[str, int] = {}
        self.drained = False  # the last pass claimed the whole backlog it read
        # The commits the last pass stamped, with their positions, in position order.
        self.stamped: list[Document] = []
        self.full_pass_every = full_pass_every
        self._full_at = -float("inf")  # monotonic start of the last pass that read the backlog
        # Commits appended in this process not yet seen stamped, by _id, oldest first;
        # at most ``batch`` (a dropped one is still pending and found by a full pass).
        self._local: dict[object, Document] = {}

    def forget(self) -> None:
        self._head = None
        self.drained = False

    def note_local(self, doc: Document) -> None:
        """``doc`` was inserted in this process: a local pass may claim it unread."""
        local = self._local
        local[doc["_id"]] = doc
        if len(local) > self.batch:
            del local[next(iter(local))]

    async def stamp(self) -> tuple[int, int]:
        """One pass, as ``stamp_pending``: (commits claimed, highest position visible)."""
        try:
            return await self._stamp()
        except BaseException:
            self._head = None
            self.drained = False
            self._forget_local()
            raise

    async def _stamp(self) -> tuple[int, int]:
        head = self._head
        if head is None or time.monotonic() - self._seen > self.trust_seconds:
            claimed = await claimed_head(self.positions)
            head = await copy_claims(self.events, self.positions, claimed)
            if head < claimed:  # a long copy backlog: finish it before claiming more
                self._head = None
                return 0, head
            self._head = None
            self._remember(head)
        self.stamped = []
        ordered = self._local_run()
        from_local = ordered is not None
        if ordered is None:
            self._full_at = time.monotonic()
            backlog = await read_backlog(self.events, self.batch)
            ordered = await in_stream_order(self.events, backlog, stamped_ends=self._ends)
            complete = len(backlog) < self.batch
        else:
            backlog, complete = ordered, True
        claims = _claims(ordered, head + 1)
        made = await _insert_claims(self.positions, claims)
        self.drained = complete and made == len(backlog)
        if made:
            stamped = [
                {**doc, "position": int(claim["position"])}
                for doc, claim in zip(ordered[:made], claims[:made], strict=True)
            ]
            if self.on_claimed is not None:
                self.on_claimed(stamped)
            await _copy(self.events, claims[:made])
            head = claims[made - 1]["position"] + claims[made - 1]["count"] - 1
            self._learn(ordered[:made])
            self.stamped = stamped
        if made < len(claims):  # refused: another pass claimed first; read the heads again
            self._head = None
            if from_local:  # and read the backlog: what is left here may be claimed elsewhere
                self._forget_local()
        else:
            self._remember(head)
        return made, head

    def _local_run(self) -> list[Document] | None:
        """This process's pending commits, if a pass may claim them without the backlog.

        None when a full pass is due or any of them is not the next commit of
        its stream as far as this stamper knows.
        """
        local = self._local
        if not local or time.monotonic() - self._full_at > self.full_pass_every:
            return None
        ends: dict[str, int] = {}
        run: list[Document] = []
        for doc in local.values():
            stream, version = doc["stream_id"], int(doc["version"])
            end = ends.get(stream, self._ends.get(stream))
            if version != 1 and end != version - 1:
                return None
            ends[stream] = version + len(doc["events"]) - 1
            run.append(doc)
        return run

    def _forget_local(self) -> None:
        """Make the next pass a full one; the commits noted so far are left to full passes."""
        self._local.clear()
        self._full_at = -float("inf")

    def _learn(self, stamped: list[Document]) -> None:
        if len(self._ends) >= _ENDS_LIMIT:
            self._ends.clear()
        local = self._local
        for doc in stamped:
            self._ends[doc["stream_id"]] = int(doc["version"]) + len(doc["events"]) - 1
            local.pop(doc["_id"], None)

    def _remember(self, head: int) -> None:
        if self._head is None:
            self._seen = time.monotonic()
        self._head = head


async def copy_claims(events: Collection, positions: Collection, upto: int) -> int:
    """Copy claims up to position ``upto`` not yet visible; return the visible head."""
    visible = await read_head(events)
    if visible >= upto:
        return visible
    cursor = positions.find({"position": {"$gt": visible, "$lte": upto}}).sort(
        "position", ASCENDING
    )
    claims = await to_list(cursor.limit(_COPY_LIMIT))
    if claims:
        await _copy(events, claims)
        visible = int(claims[-1]["position"]) + int(claims[-1]["count"]) - 1
    return visible


def _claims(ordered: list[Document], first: int) -> list[Document]:
    claims: list[Document] = []
    position = first
    for doc in ordered:
        count = len(doc["events"])
        claims.append({"_id": position, "position": position, "commit": doc["_id"], "count": count})
        position += count
    return claims


async def _insert_claims(positions: Collection, claims: list[Document]) -> int:
    """Insert ``claims`` in order, stopping at the first refusal; return how many went in."""
    if not claims:
        return 0
    try:
        await positions.insert_many(claims, ordered=True)
    except BulkWriteError as error:
        return int(error.details.get("nInserted", 0))
    return len(claims)


async def _copy(events: Collection, claims: list[Document]) -> None:
    await events.bulk_write(
        [
            UpdateOne(
                {"_id": claim["commit"], PENDING: {"$exists": True}},
                {"$set": {"position": int(claim["position"])}, "$unset": {PENDING: ""}},
            )
            for claim in claims
        ],
        ordered=True,
    )
