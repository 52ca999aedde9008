"""``EventStore`` on MongoDB: one document per commit, unique indexes do the rest.

Works with PyMongo's async client and with Motor (see ``store.driver``) on any
MongoDB-compatible server, relying only on single-document atomic writes and
unique indexes. Positions are stamped afterwards by the
sequencer (``store.stamping``, which also uses the ``positions`` collection);
``sequence()`` runs one pass of it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from store.driver import (
    DUPLICATE_KEY,
    Collection,
    Database,
    Document,
    is_duplicate_key,
    is_embedded_server,
    to_list,
)
from store.mongo_commits import (
    PENDING,
    append_result,
    commit_document,
    is_rejection,
    last_position,
    last_version,
    recorded_events,
    stream_filter,
)
from store.notifier import HeadNotifier
from store.protocol import (
    UNOBSERVED,
    AppendResult,
    CommitMetadata,
    ConcurrencyError,
    DuplicateCommandError,
    NewEvent,
    RecordedEvent,
    StoreObserver,
)
from store.records import NO_METADATA, Clock, check_append, epoch_ms, to_stored_time, utc_now
from store.stamping import FULL_PASS_EVERY, Stamper, read_head

_KNOWN_ENDS_LIMIT = 100_000
# Commit ends this process's sequencer stamped, kept for ``position_of``: enough
# for every request in flight to find its own commit after the pass.
_STAMPED_ENDS_LIMIT = 4096
# Commits per reply when reading a stream: with the server's default first
# batch of 101, a long replay would take one getMore round trip per 101 commits.
_STREAM_BATCH = 1000
# Only commits sent with a command id are indexed (and must be unique) by it.
COMMAND_ID_PARTIAL: dict[str, object] = {"$type": "string"}
# The most commit documents one insert command carries.
_GROUP_LIMIT = 256


class GroupInsert:
    """Inserts the commit documents of concurrent appends together: group commit.

    ``insert(doc)`` resolves when ``doc`` is stored and raises what inserting
    it alone would have raised (a duplicate key for a taken version or command
    id; any other failure of the command for every document it carried). One
    command is in flight at a time: an append after a quiet moment goes out on
    the sender task's first turn (with any that arrived in the same turn of the
    event loop), and the appends that arrive while a command is in flight go
    together in the next one, an unordered ``insert_many``, in which each
    document succeeds or fails on its own (MongoDB and nx-27017 report
    per-document errors by index). No append waits for company: a group is
    whatever queued up during the previous command. Under load a deposit then
    costs a fraction of an insert command, which on the embedded database,
    whose commands run one at a time, is most of what a deposit costs it.

    An append cancelled before its command is sent is left out of it; one
    cancelled after may still be stored, as with a single insert.
    """

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._waiting: list[tuple[Document, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.commands = 0  # insert commands sent, for tests and benchmarks

    async def insert(self, doc: Document) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((doc, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_while_waiting())
        await future

    async def _send_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch = [(d, f) for d, f in self._waiting[:_GROUP_LIMIT] if not f.done()]
                del self._waiting[:_GROUP_LIMIT]
                if batch:
                    await self._send(batch)
        finally:
            self._sender = None
            for _, future in self._waiting:  # only if this task itself was cancelled
                future.cancel()
            self._waiting.clear()

    async def _send(self, batch: list[tuple[Document, asyncio.Future[None]]]) -> None:
        self.commands += 1
        try:
            if len(batch) == 1:
                await self._collection.insert_one(batch[0][0])
            else:
                await self._collection.insert_many([doc for doc, _ in batch], ordered=False)
        except InvalidDocument as error:
            if len(batch) == 1:
                _settle(batch, error)
                return
            # The driver refused a document it could not encode before sending
            # the command (which fits one message unless the documents pass
            # 48 MB together): each alone, so that it fails only its own append.
            self.commands -= 1
            for sent in batch:
                await self._send([sent])
        except BulkWriteError as error:
            details = error.details
            if details.get("writeConcernErrors"):
                _settle(batch, error)  # stored but not confirmed: as insert_one would say
                return
            failed = {e["index"]: e for e in details.get("writeErrors", ())}
            for index, sent in enumerate(batch):
                refused = failed.get(index)
                _settle([sent], None if refused is None else _write_error(refused))
        except BaseException as error:
            _settle(batch, error)
            if not isinstance(error, Exception):
                raise
        else:
            _settle(batch, None)


def _settle(
    batch: Sequence[tuple[Document, asyncio.Future[None]]], error: BaseException | None
) -> None:
    for _, future in batch:
        if future.done():
            continue  # its append was cancelled while the command ran
        if error is None:
            future.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)


def _write_error(refused: Document) -> PyMongoError:
    """One document's error of an ``insert_many``, as ``insert_one`` would have raised it."""
    message, code = str(refused.get("errmsg", "write error")), refused.get("code")
    if code == DUPLICATE_KEY:
        return DuplicateKeyError(message, code, refused)
    return WriteError(message, code, refused)


class MongoEventStore:
    """``EventStore`` on the ``events`` collection of ``database`` (PyMongo async or Motor).

    Call ``await ensure_indexes()`` once before use (idempotent). ``clock``
    fixes ``recorded_at`` in tests. ``notifier`` advances whenever this process
    stamps or observes positions. Positions are stamped by ``sequence()``
    passes only: it needs a sequencer. A pass claims the commits appended
    through this object without reading the backlog for up to
    ``full_pass_every`` seconds after one that read it (``store.stamping.Stamper``).
    """

    needs_sequencer = True

    def __init__(
        self,
        database: Database,
        *,
        collection: str = "events",
        positions: str | None = None,
        clock: Clock = utc_now,
        observer: StoreObserver = UNOBSERVED,
        position_wait: float = 0.5,
        full_pass_every: float = FULL_PASS_EVERY,
    ) -> None:
        self._observer = observer
        # The longest ``position_of`` waits for this process's sequencer.
        self.position_wait = position_wait
        self.collection: Collection = database[collection]
        # Claimed positions (store.stamping); one per events collection.
        self.positions: Collection = database[positions or f"{collection}_positions"]
        self.notifier = HeadNotifier()
        self.inserts = GroupInsert(self.collection)
        self._stamper = Stamper(
            self.collection,
            self.positions,
            full_pass_every=full_pass_every,
            on_claimed=self._learn_stamped,
        )
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._stamp_listeners: list[Callable[[Sequence[RecordedEvent]], None]] = []
        # Latest commit end seen per stream: an append at a known end needs no extra check.
        self._known_ends: dict[str, int] = {}
        # How command ids are looked up; ensure_indexes() picks the server's indexed form.
        self.command_query: Callable[[str], Document] = command_filter
        # nx-27017 evaluates an $or in Python over the whole collection, ignoring the
        # position bound: there, read_all pages in position order and filters types here.
        self._types_filtered_here = False
        # Positions of the commits this process's sequencer stamped lately, by
        # (stream id, last version), and the requests waiting for one of them.
        self._stamped_ends: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._appended_here: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._position_waiters: dict[tuple[str, int], list[asyncio.Future[int]]] = {}
        self._last_pass = -float("inf")  # monotonic time of this process's last pass

    async def ensure_indexes(self) -> None:
        """Create the collection's indexes; safe to call at every start."""
        events = self.collection
        await events.create_index(
            [("stream_id", ASCENDING), ("version", ASCENDING)], unique=True, name="stream_version"
        )
        await ensure_command_index(events)
        await events.create_index(
            "position",
            unique=True,
            name="position",
            partialFilterExpression={"position": {"$exists": True}},
        )
        await events.create_index(
            PENDING, name="pending", partialFilterExpression={PENDING: {"$exists": True}}
        )
        await self.positions.create_index("commit", unique=True, name="commit")
        await self.positions.create_index("position", unique=True, name="position")
        if await is_embedded_server(events.database):
            self.command_query = embedded_command_filter
            self._types_filtered_here = True

    def add_append_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every successful append (the sequencer's wake-up)."""
        self._listeners.append(listener)

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        with self._observer.append(stream_type, len(events), metadata) as observed:
            return await self._append(stream_id, stream_type, expected_version, events, observed)

    async def _append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> AppendResult:
        check_append(expected_version, events)
        if expected_version > 0 and self._known_ends.get(stream_id) != expected_version:
            await self._check_commit_end(stream_id, expected_version, metadata)
        doc = commit_document(
            stream_id=stream_id,
            stream_type=stream_type,
            version=expected_version + 1,
            events=events,
            metadata=metadata,
            recorded_at=to_stored_time(self._clock()),
            pending=epoch_ms(),
        )
        try:
            await self.inserts.insert(doc)
        except PyMongoError as error:
            if not is_duplicate_key(error):
                raise
            raise await self._collision(stream_id, expected_version, metadata) from error
        self._learn(doc)
        self._stamper.note_local(doc)
        appended = self._appended_here
        appended[(stream_id, last_version(doc))] = None
        if len(appended) > _STAMPED_ENDS_LIMIT:
            appended.popitem(last=False)
        for listener in self._listeners:
            listener()
        return append_result(doc)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        with self._observer.read_stream(stream_id, from_version):
            return await self._read_stream(stream_id, from_version, to_version)

    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None
    ) -> list[RecordedEvent]:
        versions: dict[str, int] = {"$gte": from_version}
        if to_version is not None:
            versions["$lte"] = to_version
        cursor = self.collection.find({**stream_filter(stream_id), "version": versions})
        docs = await to_list(cursor.sort("version", ASCENDING).batch_size(_STREAM_BATCH))
        if self._may_straddle(stream_id, from_version, docs):
            before = await self._last_commit(stream_id, {"$lt": from_version})
            if before is not None:
                docs.insert(0, before)
        for doc in docs:
            self._learn(doc)
        last = to_version if to_version is not None else float("inf")
        return [
            event
            for doc in docs
            for event in recorded_events(doc)
            if from_version <= event.version <= last
        ]

    async def stream_version(self, stream_id: str) -> int:
        doc = await self._last_commit(stream_id, None)
        if doc is None:
            return 0
        self._learn(doc)
        return last_version(doc)

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        doc = await self.collection.find_one(
            {**stream_filter(stream_id), "recorded_at": {"$lte": to_stored_time(moment)}},
            sort=[("version", DESCENDING)],
        )
        return 0 if doc is None else last_version(doc)

    async def read_all(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        after_position = max(after_position, 0)
        if limit <= 0 or (types is not None and not types):
            return []
        query: Document = {}
        if stream_id is not None:
            query.update(stream_filter(stream_id))
        wanted = set(types) if types is not None else None
        if wanted is not None and self._types_filtered_here:
            docs = await self._commits_holding(query, after_position, limit, wanted)
        else:
            if types is not None:
                # nx-27017 matches ``events.type`` by equality but not with $in.
                query["$or"] = [{"events.type": kind} for kind in dict.fromkeys(types)]
            # Positions tile 1, 2, 3, ... (store.stamping): over the whole log the
            # commits starting in (after, after + limit] hold the next ``limit``
            # events, so multi-event commits are not read only to be cut off.
            window = after_position + limit if not query else None
            docs = await self._commits_after(query, after_position, limit, window)
        found = [
            event
            for doc in docs
            for event in recorded_events(doc)
            if event.position is not None
            and event.position > after_position
            and (wanted is None or event.type in wanted)
        ]
        if found and found[-1].position is not None:
            self.notifier.advance(found[-1].position)
        return found[:limit]

    async def head_position(self) -> int:
        head = await read_head(self.collection)
        self.notifier.advance(head)
        return head

    async def position_of(self, stream_id: str, version: int) -> int | None:
        key = (stream_id, version)
        known = self._stamped_ends.get(key)
        if known is not None:
            return known
        if key in self._appended_here and self._sequencing_here():
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._position_waiters.setdefault(key, []).append(waiter)
            try:
                async with asyncio.timeout(self.position_wait):
                    return await waiter
            except TimeoutError:
                pass  # no pass here stamped it in time: ask the store
            finally:  # answered, timed out or cancelled: never leave the waiter behind
                waiters = self._position_waiters.get(key, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._position_waiters[key]
        events = await self.read_stream(stream_id, version, version)
        return events[0].position if events else None

    def _sequencing_here(self) -> bool:
        """Whether this process's sequencer passes run: one stamps our appends soon.

        A sequencer holding the lease passes at once after a local append and at
        least once per idle interval (at most the notifier's watch bound).
        """
        bound = self.notifier.watch_bound or 1.0
        return time.monotonic() - self._last_pass <= 2 * bound

    def _learn_stamped(self, stamped: Sequence[Document]) -> None:
        """Remember the claimed commit ends and answer the requests waiting for them."""
        ends = self._stamped_ends
        for doc in stamped:
            key = (doc["stream_id"], last_version(doc))
            position = last_position(doc)
            if position is None:
                continue
            ends[key] = position
            self._appended_here.pop(key, None)
            for waiter in self._position_waiters.pop(key, ()):
                if not waiter.done():
                    waiter.set_result(position)
        while len(ends) > _STAMPED_ENDS_LIMIT:
            ends.popitem(last=False)

    async def sequence(self) -> int:
        started = time.time_ns()
        self._last_pass = time.monotonic()
        stamped, head = await self._stamper.stamp()
        if self._stamp_listeners and self._stamper.stamped:
            events = [e for doc in self._stamper.stamped for e in recorded_events(doc)]
            for listener in self._stamp_listeners:
                listener(events)
        self.notifier.advance(head)
        if stamped:
            self._observer.sequenced(started, stamped)
        return stamped

    async def sequencing_backlog(self, cap: int) -> tuple[int, int | None]:
        # Through the pending index: the marker is the epoch ms at insert.
        cursor = self.collection.find({PENDING: {"$gte": 0}}, {PENDING: 1})
        pending = await to_list(cursor.sort(PENDING, ASCENDING).limit(cap))
        return len(pending), int(pending[0][PENDING]) if pending else None

    def add_stamp_listener(self, listener: Callable[[Sequence[RecordedEvent]], None]) -> None:
        """Call ``listener(events)`` with the events each ``sequence()`` pass here made
        visible (contiguous, in position order), before the notifier advances."""
        self._stamp_listeners.append(listener)

    @property
    def backlog_drained(self) -> bool:
        """Whether the last ``sequence()`` pass claimed the whole backlog it read."""
        return self._stamper.drained

    async def find_command(self, command_id: str) -> AppendResult | None:
        doc = await self.collection.find_one(self.command_query(command_id))
        return None if doc is None or is_rejection(doc) else append_result(doc)

    async def _commits_holding(
        self, query: Document, after: int, limit: int, wanted: set[str]
    ) -> list[Document]:
        """Commits past ``after`` holding a ``wanted`` event type, through position-order pages.

        Stops once ``limit`` such events are found or the log ends; each page is
        served by the position index.
        """
        kept: list[Document] = []
        found = 0
        while True:
            page = await self._commits_after(query, after, limit)
            for doc in page:
                hits = sum(1 for event in doc["events"] if event["type"] in wanted)
                if hits:
                    kept.append(doc)
                    found += hits
            if len(page) < limit or found >= limit or not page:
                return kept
            after = last_position(page[-1]) or after

    async def _commits_after(
        self, query: Document, after: int, limit: int, window: int | None = None
    ) -> list[Document]:
        """Sequenced commits holding events past ``after`` (starting at most at ``window``).

        In position order; one indexed range, sorted and limited, per page.
        """
        positions: Document = {"$gt": after}
        if window is not None:
            positions["$lte"] = window
        cursor = self.collection.find({**query, "position": positions})
        # The whole page in one reply (servers default to 101 documents, then getMores).
        docs = await to_list(cursor.sort("position", ASCENDING).limit(limit).batch_size(limit))
        if after > 0 and (not docs or docs[0]["position"] != after + 1):
            # A commit that starts at or below ``after`` may still hold later events.
            straddling = await self.collection.find_one(
                {**query, "position": {"$lte": after}}, sort=[("position", DESCENDING)]
            )
            if straddling is not None and (last_position(straddling) or 0) > after:
                docs.insert(0, straddling)
        return docs

    def _may_straddle(self, stream_id: str, from_version: int, docs: list[Document]) -> bool:
        """Whether a commit starting below ``from_version`` may hold it (``docs`` start later).

        Not when a commit seen earlier ends right before it: commits never change,
        so the next one starts at ``from_version`` and ``docs`` would hold it.
        """
        if from_version <= 1 or (docs and docs[0]["version"] == from_version):
            return False
        return self._known_ends.get(stream_id) != from_version - 1

    async def _last_commit(self, stream_id: str, versions: Document | None) -> Document | None:
        query: Document = stream_filter(stream_id)
        if versions is not None:
            query["version"] = versions
        doc: Document | None = await self.collection.find_one(query, sort=[("version", DESCENDING)])
        return doc

    async def _check_commit_end(
        self, stream_id: str, expected_version: int, metadata: CommitMetadata
    ) -> None:
        """Refuse an expected version that no commit of the stream ends at.

        The unique (stream_id, version) index only catches writers whose expected
        version is a commit boundary; this catches the others (a client's guess).
        """
        doc = await self._last_commit(stream_id, {"$lte": expected_version})
        if doc is None or last_version(doc) != expected_version:
            raise await self._collision(stream_id, expected_version, metadata)
        self._learn(doc)

    async def _collision(
        self, stream_id: str, expected_version: int, metadata: CommitMetadata
    ) -> Exception:
        """Which unique index refused the insert (nx-27017 reports no keyPattern)."""
        command_id = metadata.command_id
        if command_id is not None:
            existing = await self.collection.find_one(
                self.command_query(command_id), projection={"_id": 1}
            )
            if existing is not None:
                return DuplicateCommandError(command_id)
        return ConcurrencyError(stream_id, expected_version, await self.stream_version(stream_id))

    def _learn(self, doc: Document) -> None:
        stream_id: str = doc["stream_id"]
        end = last_version(doc)
        if end > self._known_ends.get(stream_id, 0):
            if len(self._known_ends) >= _KNOWN_ENDS_LIMIT:
                self._known_ends.clear()
            self._known_ends[stream_id] = end


async def ensure_command_index(events: Collection) -> None:
    """The unique command-id index: one commit or rejection per command id.

    Shared by ``MongoEventStore`` and ``MongoCommandLog``, which both rely on
    it; creating it again with the same options does nothing.
    """
    await events.create_index(
        "metadata.command_id",
        unique=True,
        name="command_id",
        partialFilterExpression={"metadata.command_id": COMMAND_ID_PARTIAL},
    )


def command_filter(command_id: str) -> dict[str, object]:
    """Match a command id so that MongoDB can use the partial ``command_id`` index.

    The planner only picks a partial index when the query implies its filter
    expression, and it proves that by containment, not by reasoning about
    types: an equality alone would scan the collection. Repeating ``$type``
    makes the implication literal.
    """
    return {"metadata.command_id": {"$eq": command_id, **COMMAND_ID_PARTIAL}}


def embedded_command_filter(command_id: str) -> dict[str, object]:
    """``command_filter`` without the ``$type`` repetition, for nx-27017 only.

    nx-27017 cannot compile ``$type`` to SQL and evaluates such a query in
    Python over every commit (a full scan before each command with an id);
    it ignores partial filters, so a plain ``$eq`` is served by its index.
    Both forms match the same documents: a string equality implies the type.
    """
    return {"metadata.command_id": {"$eq": command_id}}
