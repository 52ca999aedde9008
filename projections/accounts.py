"""The accounts feature's read side: the ``accounts`` and ``account_statement`` read models.

The ``accounts`` read model: one document per account, as of its stream version.

``{_id: account_id, owner, currency, balance, balance_minor, status
"OPEN"|"CLOSED", version, position, opened_at, updated_at}``: ``balance`` is
the decimal string (``domain.money.format_amount``, e.g. ``"12.30"``) and
``balance_minor`` the exact minor units for arithmetic, as
``domain.codec.storable_int`` stores them: an int64 for every balance a
deposit can reach, a digit string only beyond (a refund past the maximum).
Nothing sorts by it; read it with ``balance_minor``.
Times are ISO-8601 UTC strings. Writes are guarded by ``version``; a batch's
events for one account are merged into a single write.

The ``account_statement`` read model: one line per money movement, in stream order.

``{_id: "<account_id>:<version>", account_id, version, position, kind
("deposit"|"withdrawal"|"transfer_out"|"transfer_in"|"refund"), amount
(signed minor units, bounded), balance (after the line; unbounded, so stored
by ``domain.codec.storable_int``), transfer_id|None, recorded_at}``. Lines
are immutable: inserting an existing ``_id`` again is "already applied".

Each read model's projector, its typed rows (money as int minor units read back
exactly from ``domain.codec.storable_int``'s stored shape, times as aware UTC
datetimes) and the read view the API queries live together here; ``READ_SIDE``
registers them, and the live ``account:<id>`` topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.codec import storable_int, stored_int
from domain.money import format_amount
from projections.documents import MAX_PAGE_SIZE, DocumentStore, Page, PageSpec, fetch_page
from projections.live import topic_for
from projections.projector import (
    ConsumerDeps,
    ConsumerSpec,
    FieldsOf,
    LiveSpec,
    ReadModelProjector,
    ReadSide,
    StreamDocumentsProjector,
    change_note,
    iso,
    parse_time,
    position_of,
    publish_notes,
    relevant,
)
from store.protocol import RecordedEvent

# -- accounts: one document per account ------------------------------------------------

NAME = "accounts"
INDEXES = [[("owner", 1)]]


def _opened(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": data["owner"],
        "currency": data["currency"],
        **_money(0),
        "status": "OPEN",
        "opened_at": iso(event.recorded_at),
    }


def _money(minor: int) -> dict[str, Any]:
    return {"balance": format_amount(minor), "balance_minor": storable_int(minor)}


def _balance(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return _money(stored_int(data["balance"]))


def _closed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "CLOSED"}


FIELDS: dict[str, FieldsOf] = {
    "AccountOpened": _opened,
    "MoneyDeposited": _balance,
    "MoneyWithdrawn": _balance,
    "MoneyDebitedForTransfer": _balance,
    "MoneyCreditedForTransfer": _balance,
    "MoneyRefundedForTransfer": _balance,
    "AccountClosed": _closed,
}


class AccountsProjector(StreamDocumentsProjector):
    """Projects account events into ``accounts`` (or the fixed ``physical`` collection)."""

    name = NAME
    indexes = INDEXES
    stream_type = "account"
    fields = FIELDS


def balance_minor(doc: Mapping[str, Any]) -> int:
    """An ``accounts`` document's exact balance in minor units.

    ``balance`` is stored as the decimal string and ``balance_minor`` as the
    int; documents written before ``balance_minor`` existed held the int in
    ``balance``, read as such until a rebuild rewrites them.
    """
    if "balance_minor" in doc:
        return stored_int(doc["balance_minor"])
    return stored_int(doc["balance"])


@dataclass(frozen=True)
class AccountRecord:
    id: str
    owner: str
    currency: str
    balance: int
    status: str
    version: int
    position: int
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AccountRecord:
        return cls(
            id=doc["_id"],
            owner=doc["owner"],
            currency=doc["currency"],
            balance=balance_minor(doc),
            status=doc["status"],
            version=int(doc["version"]),
            position=int(doc["position"]),
            opened_at=parse_time(doc["opened_at"]),
            updated_at=parse_time(doc["updated_at"]),
        )


class AccountsView:
    """Accounts by id, and pages of accounts (optionally one owner's) in id order.

    Pages in either direction (``projections.documents.fetch_page``); the ``owner`` index
    serves one owner's accounts on both servers (nx-27017 refuses indexes with ``_id``).
    """

    def __init__(self, documents: DocumentStore, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self._docs = documents
        self._spec = PageSpec("accounts", [("_id", 1)], max_size=max_page_size)

    async def get(self, account_id: str) -> AccountRecord | None:
        doc = await self._docs.get(await self._docs.resolve(NAME), account_id)
        return AccountRecord.from_doc(doc) if doc is not None else None

    async def list(
        self,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        owner: str | None = None,
    ) -> Page[AccountRecord]:
        where = {"owner": owner} if owner is not None else {}
        collection = await self._docs.resolve(NAME)
        return await fetch_page(
            self._docs,
            collection,
            self._spec,
            AccountRecord.from_doc,
            first=first,
            after=after,
            last=last,
            before=before,
            where=where,
        )


# -- account_statement: one line per money movement ------------------------------------

STATEMENT = "account_statement"
STATEMENT_INDEXES = [[("account_id", 1), ("version", 1)]]

# event type -> (kind, sign of the amount)
KINDS: dict[str, tuple[str, int]] = {
    "MoneyDeposited": ("deposit", 1),
    "MoneyWithdrawn": ("withdrawal", -1),
    "MoneyDebitedForTransfer": ("transfer_out", -1),
    "MoneyCreditedForTransfer": ("transfer_in", 1),
    "MoneyRefundedForTransfer": ("refund", 1),
}


def line_id(account_id: str, version: int) -> str:
    return f"{account_id}:{version}"


def statement_line(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    kind, sign = KINDS[event.type]
    return {
        "_id": line_id(event.stream_id, event.version),
        "account_id": event.stream_id,
        "version": event.version,
        "position": position_of(event),
        "kind": kind,
        "amount": sign * int(data["amount"]),
        "balance": storable_int(stored_int(data["balance"])),
        "transfer_id": data.get("transfer_id"),
        "recorded_at": iso(event.recorded_at),
    }


class StatementProjector(ReadModelProjector):
    """Projects money movements into ``account_statement`` (or a fixed ``physical``)."""

    name = STATEMENT
    indexes = STATEMENT_INDEXES

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        lines = [
            statement_line(event, data)
            for event, data in relevant(events, KINDS, "account", self._registry)
        ]
        await self.target.documents.insert_new(self.target.name, lines)
        publish_notes(
            self._hub, [(f"statement:{line['account_id']}", line_note(line)) for line in lines]
        )


def line_note(line: dict[str, Any]) -> dict[str, Any]:
    return change_note(line["_id"], line["version"], line["position"])


@dataclass(frozen=True)
class StatementLine:
    id: str
    account_id: str
    version: int
    position: int
    kind: str
    amount: int
    balance: int
    transfer_id: str | None
    recorded_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StatementLine:
        return cls(
            id=doc["_id"],
            account_id=doc["account_id"],
            version=int(doc["version"]),
            position=int(doc["position"]),
            kind=doc["kind"],
            amount=int(doc["amount"]),
            balance=stored_int(doc["balance"]),
            transfer_id=doc.get("transfer_id"),
            recorded_at=parse_time(doc["recorded_at"]),
        )


class StatementView:
    """An account's statement lines in stream order (oldest first)."""

    def __init__(self, documents: DocumentStore, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self._docs = documents
        self._spec = PageSpec("statement", [("version", 1)], max_size=max_page_size)

    async def list(
        self,
        account_id: str,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[StatementLine]:
        collection = await self._docs.resolve(STATEMENT)
        return await fetch_page(
            self._docs,
            collection,
            self._spec,
            StatementLine.from_doc,
            first=first,
            after=after,
            last=last,
            before=before,
            where={"account_id": account_id},
        )


# -- the read side ---------------------------------------------------------------------


def _accounts(deps: ConsumerDeps, physical: str | None) -> AccountsProjector:
    return AccountsProjector(
        deps.documents, registry=deps.registry, hub=deps.hub, physical=physical
    )


def _statement(deps: ConsumerDeps, physical: str | None) -> StatementProjector:
    return StatementProjector(
        deps.documents, registry=deps.registry, hub=deps.hub, physical=physical
    )


def _views(documents: DocumentStore, max_page_size: int) -> tuple[object, ...]:
    return (
        AccountsView(documents, max_page_size=max_page_size),
        StatementView(documents, max_page_size=max_page_size),
    )


def _route(event: RecordedEvent) -> tuple[str, ...]:
    return (topic_for("account", event.stream_id),) if event.stream_type == "account" else ()


READ_SIDE = ReadSide(
    consumers=(ConsumerSpec(NAME, _accounts), ConsumerSpec(STATEMENT, _statement)),
    views=_views,
    live=(LiveSpec("account", NAME, lambda documents: AccountsView(documents).get, _route),),
)
