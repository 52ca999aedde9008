"""The ledger feature's read side: the ``ledger`` read model, totals per currency.

``{_id: currency, open_accounts, total_balance, total_deposited,
total_withdrawn, position}``. The three totals are sums over every event of
the currency and have no bound (about 18,500 maximum-size deposits pass the
signed 64-bit range), so they are stored by ``domain.codec.storable_int``: an
int64 while they fit, the exact digit string beyond; they are added up as
Python ints. ``total_balance`` is the sum of account balances: money in
flight between a transfer's debit and its credit or refund is in no balance.
Writes are guarded by ``position`` (the last event that changed the
currency's totals): a batch reads the stored totals and applies only events
beyond their position, so replays and overlapping batches are no-ops.

A running projector remembers the totals it wrote last and starts the next
batch from them without reading: compare and set, each write lands only if
the stored document is still at the remembered position. If another instance
wrote in between (a lease that moved and came back), it lands nowhere, and the
batch is applied again to what is stored. After any failure the totals are
read again. Totals edited outside the projector without moving ``position``
are overwritten by a running projector's next batch; a projector started
after the edit reads them.

Most account events do not name their currency; the account's currency comes
from its ``AccountOpened`` (seen in this run, or read from the event store).

``READ_SIDE`` registers the projector, the ``LedgerView`` the API queries and the
live ``ledger`` topic (every account event may change it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.codec import EventRegistry, storable_int, stored_int
from projections.documents import DocumentStore, GuardedWrite, Query
from projections.projector import (
    ChangePublisher,
    ConsumerDeps,
    ConsumerSpec,
    LiveSpec,
    ReadModelProjector,
    ReadSide,
    change_note,
    payload,
    position_of,
    publish_notes,
    relevant,
)
from store.protocol import EventStore, RecordedEvent

NAME = "ledger"
TOPIC = "ledger"
CACHE_SIZE = 100_000

Totals = dict[str, Any]
Apply = Callable[[Totals, dict[str, Any]], None]


def _opened(totals: Totals, data: dict[str, Any]) -> None:
    totals["open_accounts"] += 1


def _closed(totals: Totals, data: dict[str, Any]) -> None:
    totals["open_accounts"] -= 1


def _deposited(totals: Totals, data: dict[str, Any]) -> None:
    totals["total_balance"] += data["amount"]
    totals["total_deposited"] += data["amount"]


def _withdrawn(totals: Totals, data: dict[str, Any]) -> None:
    totals["total_balance"] -= data["amount"]
    totals["total_withdrawn"] += data["amount"]


def _leg_out(totals: Totals, data: dict[str, Any]) -> None:
    totals["total_balance"] -= data["amount"]


def _leg_in(totals: Totals, data: dict[str, Any]) -> None:
    totals["total_balance"] += data["amount"]


APPLY: dict[str, Apply] = {
    "AccountOpened": _opened,
    "AccountClosed": _closed,
    "MoneyDeposited": _deposited,
    "MoneyWithdrawn": _withdrawn,
    "MoneyDebitedForTransfer": _leg_out,
    "MoneyCreditedForTransfer": _leg_in,
    "MoneyRefundedForTransfer": _leg_in,
}


MONEY_FIELDS = ("total_balance", "total_deposited", "total_withdrawn")


def loaded_totals(doc: Totals) -> Totals:
    """A stored totals document with its money as exact ints (any stored shape)."""
    return {**doc, **{name: stored_int(doc[name]) for name in MONEY_FIELDS}}


def stored_totals(totals: Totals) -> Totals:
    """``totals`` as written: money by ``storable_int``, so no sum overflows storage."""
    return {**totals, **{name: storable_int(totals[name]) for name in MONEY_FIELDS}}


def empty_totals(currency: str) -> Totals:
    return {
        "_id": currency,
        "open_accounts": 0,
        "total_balance": 0,
        "total_deposited": 0,
        "total_withdrawn": 0,
        "position": 0,
    }


class LedgerProjector(ReadModelProjector):
    """Projects account events into ``ledger`` (or the fixed ``physical`` collection)."""

    name = NAME

    def __init__(
        self,
        documents: DocumentStore,
        store: EventStore,
        *,
        registry: EventRegistry,
        hub: ChangePublisher | None = None,
        physical: str | None = None,
    ) -> None:
        super().__init__(documents, registry=registry, hub=hub, physical=physical)
        self._store = store
        self._currencies: OrderedDict[str, str] = OrderedDict()
        # The totals this instance last wrote, by (collection, currency): the next
        # batch starts from them instead of reading, and writes only if the stored
        # document is still at their position (compare and set).
        self._written: dict[tuple[str, str], Totals] = {}

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        applicable = relevant(events, APPLY, "account", self._registry)
        if not applicable:
            return
        keyed = [(await self._currency(e, data), e, data) for e, data in applicable]
        collection = self.target.name
        currencies = sorted({c for c, _, _ in keyed})
        try:
            changed = await self._apply_remembered(collection, currencies, keyed)
            if changed is None:
                stored = await self.target.documents.get_many(collection, currencies)
                loaded = {currency: loaded_totals(doc) for currency, doc in stored.items()}
                changed = _applied(keyed, loaded)
                await self._write(collection, changed)
        except BaseException:
            self._forget(collection, currencies)  # the outcome of the write is unknown
            raise
        for currency, totals in changed.items():
            self._written[(collection, currency)] = totals

    async def _apply_remembered(
        self,
        collection: str,
        currencies: Sequence[str],
        keyed: Sequence[tuple[str, RecordedEvent, dict[str, Any]]],
    ) -> dict[str, Totals] | None:
        """The batch applied to the remembered totals and written over them; None when
        a currency's totals are not remembered or another instance wrote them since."""
        start: dict[str, Totals] = {}
        for currency in currencies:
            remembered = self._written.get((collection, currency))
            if remembered is None:
                return None
            start[currency] = remembered
        changed = _applied(keyed, start)
        for currency, totals in changed.items():
            fields = {k: v for k, v in stored_totals(totals).items() if k != "_id"}
            equal = {"position": start[currency]["position"]}
            if not await self.target.documents.update_if(collection, currency, fields, equal=equal):
                self._forget(collection, currencies)
                return None
            self._publish({currency: totals})
        return changed

    async def _write(self, collection: str, changed: dict[str, Totals]) -> None:
        writes = [
            GuardedWrite(
                c,
                "position",
                t["position"],
                {k: v for k, v in stored_totals(t).items() if k != "_id"},
            )
            for c, t in changed.items()
        ]
        await self.target.documents.apply(collection, writes)
        self._publish(changed)

    def _publish(self, changed: dict[str, Totals]) -> None:
        publish_notes(
            self._hub,
            ((TOPIC, change_note(c, None, t["position"])) for c, t in changed.items()),
        )

    def _forget(self, collection: str, currencies: Sequence[str]) -> None:
        for currency in currencies:
            self._written.pop((collection, currency), None)

    async def _currency(self, event: RecordedEvent, data: dict[str, Any]) -> str:
        currency = data.get("currency")
        if not isinstance(currency, str):
            currency = self._currencies.get(event.stream_id)
        if currency is None:
            currency = await self._opened_currency(event.stream_id)
        self._remember(event.stream_id, currency)
        return currency

    async def _opened_currency(self, account_id: str) -> str:
        first = await self._store.read_stream(account_id, 1, 1)
        if not first or first[0].type != "AccountOpened":
            raise LookupError(f"account {account_id} has no AccountOpened event")
        return str(payload(self._registry, first[0])["currency"])

    def _remember(self, account_id: str, currency: str) -> None:
        self._currencies[account_id] = currency
        self._currencies.move_to_end(account_id)
        if len(self._currencies) > CACHE_SIZE:
            self._currencies.popitem(last=False)


def _applied(
    keyed: Sequence[tuple[str, RecordedEvent, dict[str, Any]]], start: dict[str, Totals]
) -> dict[str, Totals]:
    """The totals each currency reaches from ``start`` (or empty) through the events
    it does not include yet; only the currencies that changed. ``start`` is left as is."""
    changed: dict[str, Totals] = {}
    for currency, event, data in keyed:
        totals = changed.get(currency)
        if totals is None:
            totals = dict(start[currency]) if currency in start else empty_totals(currency)
        if position_of(event) <= totals["position"]:
            continue  # this currency's totals already include the event
        APPLY[event.type](totals, data)
        totals["position"] = position_of(event)
        changed[currency] = totals
    return changed


@dataclass(frozen=True)
class LedgerTotals:
    currency: str
    open_accounts: int
    total_balance: int
    total_deposited: int
    total_withdrawn: int
    position: int

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LedgerTotals:
        return cls(
            currency=doc["_id"],
            open_accounts=int(doc["open_accounts"]),
            total_balance=stored_int(doc["total_balance"]),
            total_deposited=stored_int(doc["total_deposited"]),
            total_withdrawn=stored_int(doc["total_withdrawn"]),
            position=int(doc["position"]),
        )


class LedgerView:
    """Totals per currency."""

    def __init__(self, documents: DocumentStore) -> None:
        self._docs = documents

    async def get(self, currency: str) -> LedgerTotals | None:
        doc = await self._docs.get(await self._docs.resolve(NAME), currency)
        return LedgerTotals.from_doc(doc) if doc is not None else None

    async def all(self) -> list[LedgerTotals]:
        collection = await self._docs.resolve(NAME)
        docs = await self._docs.find(collection, Query(limit=1000))
        return [LedgerTotals.from_doc(doc) for doc in docs]


# -- the read side ---------------------------------------------------------------------


def _ledger(deps: ConsumerDeps, physical: str | None) -> LedgerProjector:
    return LedgerProjector(
        deps.documents, deps.store, registry=deps.registry, hub=deps.hub, physical=physical
    )


def _views(documents: DocumentStore, max_page_size: int) -> tuple[object, ...]:
    return (LedgerView(documents),)


def _loader(documents: DocumentStore) -> Callable[[str], Any]:
    view = LedgerView(documents)

    async def totals(_: str) -> list[LedgerTotals]:
        return await view.all()

    return totals


def _route(event: RecordedEvent) -> tuple[str, ...]:
    return (TOPIC,) if event.stream_type == "account" else ()


READ_SIDE = ReadSide(
    consumers=(ConsumerSpec(NAME, _ledger),),
    views=_views,
    live=(LiveSpec(TOPIC, NAME, _loader, _route),),
)
