"""Ledger totals never overflow storage: ~18,600 maximum-size movements on the embedded MongoDB.

The events are appended to an in-memory event store directly (what 18,600
deposit and withdraw commands would append) and the ledger projector is
driven with them, batch by batch, onto nx-27017, where every integer is a BSON
int64: ``total_deposited`` passes 2**63 - 1 after about 9,224 maximum-size
deposits.
"""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from application.ids import new_event_id
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import AccountOpened, MoneyDeposited, MoneyWithdrawn
from domain.codec import INT64_MAX, build_registry, stored_int
from domain.money import MAX_AMOUNT_MINOR
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from projections.documents import InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.ledger import LedgerProjector, LedgerView
from store.memory import InMemoryEventStore
from store.protocol import EventStore, NewEvent

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
EVENTS = build_registry(BANK)

ROUNDS = 9_300
"""Deposit-then-withdraw rounds of the maximum amount: 18,600 events plus the openings."""


async def append(store: EventStore, account: str, version: int, event: Any) -> None:
    encoded = EVENTS.encode(event)
    new = NewEvent(new_event_id(), encoded.type, encoded.data, encoded.schema_version)
    await store.append(account, "account", version, [new])


async def busy_accounts(store: EventStore, accounts: int = 3) -> dict[str, int]:
    """Each account deposits and withdraws the maximum amount in turn; its final balance."""
    balances: dict[str, int] = {}
    versions: dict[str, int] = {}
    for number in range(accounts):
        account = f"acc-{number:032x}"
        await append(store, account, 0, AccountOpened(account, "ann", "EUR"))
        balances[account], versions[account] = 0, 1
    names = sorted(balances)
    for round_number in range(ROUNDS):
        account = names[round_number % accounts]
        balance = balances[account] + MAX_AMOUNT_MINOR
        await append(
            store, account, versions[account], MoneyDeposited(account, MAX_AMOUNT_MINOR, balance)
        )
        left = balance - MAX_AMOUNT_MINOR + (1 if round_number % 2 else 0)
        withdrawn = balance - left
        await append(
            store, account, versions[account] + 1, MoneyWithdrawn(account, withdrawn, left)
        )
        balances[account], versions[account] = left, versions[account] + 2
    await store.sequence()
    return balances


async def project(projector: LedgerProjector, store: EventStore, batch: int) -> None:
    await projector.prepare()
    position = 0
    while events := await store.read_all(position, batch):
        await projector.handle_batch(events)
        position = events[-1].position or position


async def test_totals_of_18600_maximum_size_movements_stay_exact_on_mongodb(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = InMemoryEventStore()
    balances = await busy_accounts(store)
    documents = MongoDocumentStore(mongo_db, alias_ttl=0.0)
    await project(LedgerProjector(documents, store, registry=EVENTS), store, batch=500)

    deposited = ROUNDS * MAX_AMOUNT_MINOR
    assert deposited > INT64_MAX  # totals past the int64 range, stored as digits
    totals = await LedgerView(documents).get("EUR")
    assert totals is not None
    assert totals.total_deposited == deposited
    assert totals.total_balance == sum(balances.values())  # money conserved
    assert totals.total_balance == totals.total_deposited - totals.total_withdrawn
    assert totals.open_accounts == 3
    stored = await documents.get("ledger", "EUR")
    assert stored is not None
    assert stored["total_deposited"] == str(deposited)  # past int64: its exact digits
    assert stored["total_balance"] == sum(balances.values())  # still an int64
    assert stored_int(stored["total_withdrawn"]) == deposited - sum(balances.values())

    # Read model equals a rebuild: from scratch, in other batch sizes, on both stores.
    rebuilt_mongo = LedgerProjector(documents, store, physical="ledger_rebuilt", registry=EVENTS)
    await project(rebuilt_mongo, store, batch=777)
    memory = InMemoryDocumentStore()
    await project(LedgerProjector(memory, store, registry=EVENTS), store, batch=1_000)
    again = await documents.get("ledger_rebuilt", "EUR")
    assert again == stored
    assert await memory.get("ledger", "EUR") == stored


async def test_totals_written_as_int64_by_older_versions_keep_adding_up(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = InMemoryEventStore()
    await append(store, "acc-1", 0, AccountOpened("acc-1", "ann", "EUR"))
    await append(store, "acc-1", 1, MoneyDeposited("acc-1", 500, 500))
    await store.sequence()
    documents = MongoDocumentStore(mongo_db, alias_ttl=0.0)
    projector = LedgerProjector(documents, store, registry=EVENTS)
    await project(projector, store, batch=10)
    # A document as an older version wrote it, close to the int64 limit.
    near = INT64_MAX - 100
    await documents.set_fields(
        "ledger", "EUR", {"total_deposited": near, "total_balance": near, "total_withdrawn": 0}
    )
    await append(store, "acc-1", 2, MoneyDeposited("acc-1", 500, 1_000))
    await store.sequence()
    events = await store.read_all(2, 10)
    # This version starts after the older one wrote: a new process, nothing remembered.
    upgraded = LedgerProjector(documents, store, registry=EVENTS)
    await upgraded.handle_batch(events)
    totals = await LedgerView(documents).get("EUR")
    assert totals is not None
    assert (totals.total_deposited, totals.total_balance) == (near + 500, near + 500)


class LedgerReads(monitoring.CommandListener):
    """The reads of the ``ledger`` collection a client sends."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += event.command_name == "find" and event.command.get("find") == "ledger"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def deposits(store: EventStore, account: str, first_version: int, amounts: list[int]) -> None:
    balance = 0
    for offset, amount in enumerate(amounts):
        balance += amount
        await append(
            store, account, first_version + offset, MoneyDeposited(account, amount, balance)
        )
    await store.sequence()


async def test_the_next_batch_starts_from_the_totals_written_without_reading_them(
    mongo_url: str,
) -> None:
    reads = LedgerReads()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, event_listeners=[reads])
    try:
        documents = MongoDocumentStore(client[f"t_{uuid.uuid4().hex[:12]}"], alias_ttl=0.0)
        store = InMemoryEventStore()
        await append(store, "acc-1", 0, AccountOpened("acc-1", "ann", "EUR"))
        await deposits(store, "acc-1", 1, [100, 200])
        projector = LedgerProjector(documents, store, registry=EVENTS)
        await project(projector, store, batch=10)
        read_first = reads.count
        await deposits(store, "acc-1", 3, [300, 400])
        await projector.handle_batch(await store.read_all(3, 10))
        await deposits(store, "acc-1", 5, [500])
        await projector.handle_batch(await store.read_all(5, 10))
        assert reads.count == read_first  # no read after the first write
        totals = await LedgerView(documents).get("EUR")
        assert totals is not None
        assert (totals.total_deposited, totals.position) == (1_500, 6)
    finally:
        await client.close()


async def test_totals_another_instance_wrote_meanwhile_are_read_again_not_overwritten(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # A lease moved to another process and back: each instance's remembered
    # totals go stale while the other writes, and neither may overwrite it.
    documents = MongoDocumentStore(mongo_db, alias_ttl=0.0)
    store = InMemoryEventStore()
    await append(store, "acc-1", 0, AccountOpened("acc-1", "ann", "EUR"))
    await deposits(store, "acc-1", 1, [1])
    first = LedgerProjector(documents, store, registry=EVENTS)
    second = LedgerProjector(documents, store, registry=EVENTS)
    await first.handle_batch(await store.read_all(0, 10))  # positions 1-2
    await deposits(store, "acc-1", 2, [10])
    await second.handle_batch(await store.read_all(0, 10))  # positions 1-3, reads
    await deposits(store, "acc-1", 3, [100])
    await first.handle_batch(await store.read_all(3, 10))  # position 4: first is stale
    await deposits(store, "acc-1", 4, [1_000])
    await second.handle_batch(await store.read_all(4, 10))  # position 5: second is stale
    totals = await LedgerView(documents).get("EUR")
    assert totals is not None
    assert (totals.open_accounts, totals.total_deposited, totals.position) == (1, 1_111, 5)
    memory = InMemoryDocumentStore()
    await project(LedgerProjector(memory, store, registry=EVENTS), store, batch=1)
    assert await memory.get("ledger", "EUR") == await documents.get("ledger", "EUR")
