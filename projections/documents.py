"""Read-model document storage: the ``DocumentStore`` protocol, the in-memory store, paging.

Public surface:

- ``DocumentStore`` (protocol), ``Document``, ``SortKey``, ``GuardedWrite``,
  ``WriteBatch``, ``Query``, ``sort_values``, ``compare``, ``FencedOut``;
- ``InMemoryDocumentStore``: the store in process memory (tests, ``STORE=memory``);
- paging for the read views: ``PageSpec``, ``fetch_page``, ``Page``, ``Edge``,
  ``encode_cursor``/``decode_cursor``, ``check_directions``, ``InvalidCursor``.

The MongoDB store is ``projections.documents_mongo.MongoDocumentStore``.

Collections hold plain documents keyed by ``_id``. Writes are *guarded*: a
document records the stream version (or global position) it reflects, and an
update only lands when the stored guard value is lower. A redelivered event is
therefore a no-op. On MongoDB a guarded upsert whose guard does not match turns
into an insert that collides on ``_id`` (duplicate key 11000); the embedded
nx-27017 may instead write nothing. Both mean "already applied"
(docs/architecture.md, sections 3 and 6).

Rebuilds write into a fresh *physical* collection and then point the
*logical* name at it (``swap``): collection renames are not available on every
server (nx-27017 acknowledges ``renameCollection`` and does nothing). Readers
call ``resolve(logical)`` before each query; writers resolve once when they
take over and then write to the physical name.

Paging: a cursor is base64url of ``[kind, [sort values...]]``: the sort values
of the row it points at (keyset pagination: stable while rows are added, no
skip/offset). Cursors from one view are refused by another (``kind``). A page
runs forwards (``first`` rows after the ``after`` cursor) or backwards (the
``last`` rows before the ``before`` cursor); one cursor serves both
directions. Backwards is the same keyset query with every sort direction
flipped, so a database serves it from the same index read in reverse, with
the same tie handling, and its rows are put back in view order here. Bad
cursors, page sizes and mixed directions raise ``InvalidInput`` naming the
argument.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from domain.aggregate import InvalidInput

Document = dict[str, Any]
SortKey = tuple[str, int]  # (field, 1 ascending | -1 descending)

ALIASES = "_read_model_aliases"


class FencedOut(Exception):
    """A write made under a lease epoch was refused: a newer holder has written since.

    The holder has lost its lease (paused past it, or partitioned away) and must
    stop acting on its behalf; it may take the lease again as a newcomer.
    """


@dataclass(frozen=True)
class GuardedWrite:
    """Set ``fields`` on document ``doc_id`` unless it already reflects ``guard_value``.

    The write applies when the document is missing or its ``guard_field`` is
    lower than ``guard_value``; ``fields`` must include ``guard_field``.
    """

    doc_id: str
    guard_field: str
    guard_value: int
    fields: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, later: GuardedWrite) -> GuardedWrite:
        """This write followed by ``later`` on the same document, as one write.

        Valid because each field's final value is the one the latest event
        set, whichever of these events the stored document already reflects.
        """
        if later.doc_id != self.doc_id or later.guard_field != self.guard_field:
            raise ValueError("can only merge writes to the same document and guard")
        return GuardedWrite(
            self.doc_id,
            self.guard_field,
            max(self.guard_value, later.guard_value),
            {**self.fields, **later.fields},
        )


class WriteBatch:
    """Guarded writes collected per document, merged in arrival order."""

    def __init__(self) -> None:
        self._writes: dict[str, GuardedWrite] = {}

    def add(self, write: GuardedWrite) -> None:
        current = self._writes.get(write.doc_id)
        self._writes[write.doc_id] = write if current is None else current.merged(write)

    def writes(self) -> list[GuardedWrite]:
        return list(self._writes.values())

    def __len__(self) -> int:
        return len(self._writes)


@dataclass(frozen=True)
class Query:
    """Equality filters, optional alternatives, keyset sort, cursor and limit.

    ``where`` fields must all match; if ``any_of`` is not empty, at least one
    of its mappings must match too. ``sort`` must end with a unique field
    (normally ``_id``) so that ``after`` (the sort values of the last document
    already seen) continues without duplicates or gaps.
    """

    where: Mapping[str, Any] = field(default_factory=dict)
    any_of: Sequence[Mapping[str, Any]] = ()
    sort: Sequence[SortKey] = (("_id", 1),)
    after: Sequence[Any] | None = None
    limit: int | None = None


def sort_values(doc: Mapping[str, Any], sort: Sequence[SortKey]) -> list[Any]:
    """The values of ``doc`` for ``sort``: what a cursor after ``doc`` holds."""
    return [doc.get(name) for name, _ in sort]


def compare(a: Mapping[str, Any], b: Mapping[str, Any], sort: Sequence[SortKey]) -> int:
    """Order two documents (or a document and a cursor) by ``sort``; None first, as on MongoDB."""
    for name, direction in sort:
        left, right = _key(a.get(name)), _key(b.get(name))
        if left != right:
            return direction if left > right else -direction
    return 0


def _key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)


class DocumentStore(Protocol):
    """Collections of read-model documents; see the module docstring."""

    async def get(self, collection: str, doc_id: str) -> Document | None: ...

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        """The documents that exist among ``doc_ids``, keyed by id."""
        ...

    async def apply(self, collection: str, writes: Sequence[GuardedWrite]) -> int:
        """Perform guarded writes (at most one per document); return how many landed."""
        ...

    async def insert_new(self, collection: str, docs: Sequence[Mapping[str, Any]]) -> int:
        """Insert documents whose ``_id`` is not taken; return how many were new."""
        ...

    async def set_fields(self, collection: str, doc_id: str, fields: Mapping[str, Any]) -> None:
        """Unguarded upsert of ``fields`` (bookkeeping documents such as checkpoints)."""
        ...

    async def update_if(
        self,
        collection: str,
        doc_id: str,
        fields: Mapping[str, Any],
        *,
        equal: Mapping[str, int] | None = None,
        below: Mapping[str, int] | None = None,
    ) -> bool:
        """Set ``fields`` on the existing document ``doc_id`` in one conditional write.

        It lands only if each ``equal`` field holds exactly its value and each
        ``below`` field holds an int lower than its value (never an upsert).
        Returns whether it landed: the fenced writes of lease holders.
        """
        ...

    async def find(self, collection: str, query: Query) -> list[Document]: ...

    async def delete(self, collection: str, doc_id: str) -> None: ...

    async def drop(self, collection: str) -> None: ...

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        """Create a (non-unique) index if missing; keys never include ``_id``."""
        ...

    async def resolve(self, logical: str, *, fresh: bool = False) -> str:
        """The physical collection behind ``logical`` (itself until a swap).

        May be cached briefly per process; ``fresh`` bypasses the cache.
        """
        ...

    async def swap(self, logical: str, physical: str, *, epoch: int | None = None) -> str:
        """Point ``logical`` at ``physical``; return the physical name it had.

        With ``epoch`` (the lease epoch of the writer) the switch is fenced: it
        raises ``FencedOut`` if the alias was switched under a newer epoch.
        """
        ...


# -- in memory -----------------------------------------------------------------


class InMemoryDocumentStore:
    """Collections as dicts of deep-copied documents; one event loop, no I/O."""

    def __init__(self) -> None:
        self._collections: dict[str, dict[str, Document]] = {}
        self._aliases: dict[str, str] = {}
        self._alias_epochs: dict[str, int] = {}

    def _coll(self, name: str) -> dict[str, Document]:
        return self._collections.setdefault(name, {})

    async def get(self, collection: str, doc_id: str) -> Document | None:
        doc = self._coll(collection).get(doc_id)
        return _copy(doc) if doc is not None else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, Document]:
        docs = self._coll(collection)
        return {i: _copy(docs[i]) for i in doc_ids if i in docs}

    async def apply(self, collection: str, writes: Sequence[GuardedWrite]) -> int:
        docs = self._coll(collection)
        landed = 0
        for write in writes:
            current = docs.get(write.doc_id)
            if current is not None and not _guard_passes(current, write):
                continue
            fields = _copy(write.fields)
            # Stored dicts never leave this store (reads copy them), so update in place.
            if current is None:
                current = docs[write.doc_id] = {"_id": write.doc_id}
            current.update(fields)
            landed += 1
        return landed

    async def insert_new(self, collection: str, docs: Sequence[Mapping[str, Any]]) -> int:
        stored = self._coll(collection)
        new = 0
        for doc in docs:
            if doc["_id"] not in stored:
                stored[doc["_id"]] = _copy(doc)
                new += 1
        return new

    async def set_fields(self, collection: str, doc_id: str, fields: Mapping[str, Any]) -> None:
        docs = self._coll(collection)
        docs.setdefault(doc_id, {"_id": doc_id}).update(_copy(fields))

    async def update_if(
        self,
        collection: str,
        doc_id: str,
        fields: Mapping[str, Any],
        *,
        equal: Mapping[str, int] | None = None,
        below: Mapping[str, int] | None = None,
    ) -> bool:
        current = self._coll(collection).get(doc_id)
        if current is None:
            return False
        if any(current.get(k) != v for k, v in (equal or {}).items()):
            return False
        for name, limit in (below or {}).items():
            stored = current.get(name)
            if not (isinstance(stored, int) and stored < limit):
                return False
        current.update(_copy(fields))
        return True

    async def find(self, collection: str, query: Query) -> list[Document]:
        docs = [d for d in self._coll(collection).values() if _matches(d, query)]
        docs.sort(key=functools.cmp_to_key(lambda a, b: compare(a, b, query.sort)))
        if query.after is not None:
            after = dict(zip((name for name, _ in query.sort), query.after, strict=True))
            docs = [d for d in docs if compare(d, after, query.sort) > 0]
        if query.limit is not None:
            docs = docs[: query.limit]
        return [_copy(doc) for doc in docs]

    async def delete(self, collection: str, doc_id: str) -> None:
        self._coll(collection).pop(doc_id, None)

    async def drop(self, collection: str) -> None:
        self._collections.pop(collection, None)

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        self._coll(collection)

    async def resolve(self, logical: str, *, fresh: bool = False) -> str:
        return self._aliases.get(logical, logical)

    async def swap(self, logical: str, physical: str, *, epoch: int | None = None) -> str:
        if epoch is not None:
            if self._alias_epochs.get(logical, 0) > epoch:
                raise FencedOut(f"the alias {logical!r} was switched under a newer epoch")
            self._alias_epochs[logical] = epoch
        old = self._aliases.get(logical, logical)
        self._aliases[logical] = physical
        return old

    def collection_names(self) -> list[str]:
        """Physical collections that exist (tests and diagnostics)."""
        return sorted(self._collections)


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """A copy that shares no mutable part with ``value``; a mapping becomes a plain dict.

    Documents are mostly flat: when every value is exactly an immutable scalar,
    the dict copy is the whole copy (one pass over the value types checks it).
    Anything else takes the general path.
    """
    if isinstance(value, (dict, Mapping)):  # dict first: a C-level check, no ABC machinery
        flat = dict(value)
        if _ATOMS.issuperset(map(type, flat.values())):
            return flat
        return _deep(flat)
    return _deep(value)


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: v if isinstance(v, str | int | float | bool | None) else _deep(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return copy.deepcopy(value)


def _guard_passes(current: Mapping[str, Any], write: GuardedWrite) -> bool:
    stored = current.get(write.guard_field)
    # A document without the guard field matches no ``$lt`` filter on MongoDB.
    return isinstance(stored, int) and stored < write.guard_value


def _matches(doc: Mapping[str, Any], query: Query) -> bool:
    if any(doc.get(k) != v for k, v in query.where.items()):
        return False
    if not query.any_of:
        return True
    return any(all(doc.get(k) == v for k, v in alt.items()) for alt in query.any_of)


# -- paging --------------------------------------------------------------------

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvalidCursor(InvalidInput):
    """The ``after`` (or ``before``) cursor was not made by this view."""

    def __init__(self, message: str = "invalid cursor", field: str = "after") -> None:
        super().__init__(field, message)


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows in view order; the flags say whether rows exist beyond either end.

    ``has_previous_page`` is exact for a page read backwards and, for a page
    read forwards, whether rows exist before its ``after`` cursor (false
    without one); ``has_next_page`` likewise the other way round.
    """

    edges: list[Edge[T]]
    has_next_page: bool
    has_previous_page: bool = False

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None

    @property
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps([kind, list(values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    kind: str, cursor: str, sort: Sequence[SortKey], field: str = "after"
) -> list[Any]:
    """The sort values inside ``cursor``; ``InvalidCursor`` unless made by ``kind``."""
    if len(cursor) > 1024:
        raise InvalidCursor("cursor too long", field)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursor(field=field) from error
    if found_kind != kind or not isinstance(values, list) or len(values) != len(sort):
        raise InvalidCursor(field=field)
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise InvalidCursor(field=field)
    return values


@dataclass(frozen=True)
class PageSpec:
    """How one view pages: cursor kind, sort, and the page size limits."""

    kind: str
    sort: Sequence[SortKey]
    default_size: int = DEFAULT_PAGE_SIZE
    max_size: int = MAX_PAGE_SIZE

    def size(self, first: int | None, field: str = "first") -> int:
        size = self.default_size if first is None else first
        if size < 0 or size > self.max_size:
            raise InvalidInput(field, f"{field} must be between 0 and {self.max_size}")
        return size

    @property
    def reversed_sort(self) -> list[SortKey]:
        return [(name, -direction) for name, direction in self.sort]


def check_directions(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> None:
    """``InvalidInput`` unless the arguments ask for one direction: first/after or last/before."""
    if first is not None and last is not None:
        raise InvalidInput("last", "give first or last, not both")
    if after is not None and before is not None:
        raise InvalidInput("before", "give after or before, not both")
    if first is not None and before is not None:
        raise InvalidInput("before", "before pages backwards: use it with last, not first")
    if last is not None and after is not None:
        raise InvalidInput("after", "after pages forwards: use it with first, not last")


async def fetch_page(
    documents: DocumentStore,
    collection: str,
    spec: PageSpec,
    convert: Callable[[Mapping[str, Any]], T],
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    where: Mapping[str, Any] | None = None,
    any_of: Sequence[Mapping[str, Any]] = (),
) -> Page[T]:
    """One page of ``collection`` in ``spec.sort`` order.

    Forwards: the first ``first`` rows after the ``after`` cursor. Backwards
    (``last`` or ``before`` given): the last ``last`` rows before the
    ``before`` cursor, read through the reversed sort. Either way one bounded
    keyset query reads the page plus one row, and a page that starts from a
    cursor costs one more query of one row to tell whether rows lie beyond
    the cursor.
    """
    check_directions(first, after, last, before)
    backwards = last is not None or before is not None
    field, size_arg, cursor = ("last", last, before) if backwards else ("first", first, after)
    size = spec.size(size_arg, field)
    start = (
        decode_cursor(spec.kind, cursor, spec.sort, "before" if backwards else "after")
        if cursor is not None
        else None
    )
    sort = spec.reversed_sort if backwards else list(spec.sort)
    filters = dict(where or {})
    docs = (
        await documents.find(collection, Query(filters, any_of, sort, start, size + 1))
        if size > 0
        else []
    )
    beyond_cursor = False
    if start is not None:
        # Rows on the cursor's other side: the reversed query after the cursor, one row.
        opposite = list(spec.sort) if backwards else spec.reversed_sort
        beyond_cursor = bool(
            await documents.find(collection, Query(filters, any_of, opposite, start, 1))
        )
    rows = docs[:size]
    if backwards:
        rows.reverse()
    edges = [
        Edge(encode_cursor(spec.kind, sort_values(doc, spec.sort)), convert(doc)) for doc in rows
    ]
    more = len(docs) > size
    if backwards:
        return Page(edges, has_next_page=beyond_cursor, has_previous_page=more)
    return Page(edges, has_next_page=more, has_previous_page=beyond_cursor)
