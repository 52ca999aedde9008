"""Read views the API layer queries (never raw collections): typed rows, cursor pages.

Each view resolves its logical collection on every query, so after a rebuild's
swap readers move to the new collection (within the document store's short
alias cache) and until then keep reading the old one.
"""

from __future__ import annotations

from projections import accounts, ledger, statement, transfers
from projections.documents import DocumentStore, Query
from projections.pagination import MAX_PAGE_SIZE, Page, PageSpec, fetch_page
from projections.records import AccountRecord, LedgerTotals, StatementLine, TransferRecord

TRANSFER_STATUSES = transfers.STATUSES


class AccountsView:
    """Accounts by id, and pages of accounts (optionally one owner's) in id order.

    Pages in either direction (``projections.pagination``); the ``owner`` index
    serves one owner's accounts on both servers (nx-27017 refuses indexes with ``_id``).
    """

    def __init__(self, documents: DocumentStore, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self._docs = documents
        self._spec = PageSpec("accounts", [("_id", 1)], max_size=max_page_size)

    async def get(self, account_id: str) -> AccountRecord | None:
        doc = await self._docs.get(await self._docs.resolve(accounts.NAME), account_id)
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
        collection = await self._docs.resolve(accounts.NAME)
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
        collection = await self._docs.resolve(statement.NAME)
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


class TransfersView:
    """Transfers by id, and pages newest first, filtered by status and/or account."""

    def __init__(self, documents: DocumentStore, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self._docs = documents
        self._spec = PageSpec(
            "transfers", [("requested_at", -1), ("_id", -1)], max_size=max_page_size
        )

    async def get(self, transfer_id: str) -> TransferRecord | None:
        doc = await self._docs.get(await self._docs.resolve(transfers.NAME), transfer_id)
        return TransferRecord.from_doc(doc) if doc is not None else None

    async def count_parked(self, cap: int) -> int:
        """How many transfers are ``NEEDS_ATTENTION``, counted up to ``cap`` (a bounded read)."""
        collection = await self._docs.resolve(transfers.NAME)
        query = Query({"status": transfers.NEEDS_ATTENTION}, limit=cap)
        return len(await self._docs.find(collection, query))

    async def list(
        self,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: str | None = None,
        account_id: str | None = None,
    ) -> Page[TransferRecord]:
        """``account_id`` matches transfers from or to the account."""
        where = {"status": status} if status is not None else {}
        any_of = (
            [{"from_account_id": account_id}, {"to_account_id": account_id}]
            if account_id is not None
            else []
        )
        collection = await self._docs.resolve(transfers.NAME)
        return await fetch_page(
            self._docs,
            collection,
            self._spec,
            TransferRecord.from_doc,
            first=first,
            after=after,
            last=last,
            before=before,
            where=where,
            any_of=any_of,
        )


class LedgerView:
    """Totals per currency."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def get(self, currency: str) -> LedgerTotals | None:
        doc = await self._docs.get(await self._docs.resolve(ledger.NAME), currency)
        return LedgerTotals.from_doc(doc) if doc is not None else None

    async def all(self) -> list[LedgerTotals]:
        collection = await self._docs.resolve(ledger.NAME)
        docs = await self._docs.find(collection, Query(limit=1000))
        return [LedgerTotals.from_doc(doc) for doc in docs]
