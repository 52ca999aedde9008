"""The read-model document store every projector and read view uses.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
