"""Read views: typed rows, cursor pages, filters, bad cursors; read-your-writes waits."""

from __future__ import annotations

import asyncio

import pytest

from domain.aggregate import InvalidInput
from projections.accounts import AccountsView, StatementView
from projections.checkpoints import CheckpointStore, ReadYourWrites
from projections.documents import DocumentStore, InvalidCursor, encode_cursor
from projections.ledger import LedgerView
from projections.transfers import TransfersView
from tests.wiring import World, memory_world, settle


async def populated() -> tuple[World, list[str], list[str]]:
    world = memory_world()
    group = world.group()
    group.start()
    try:
        accounts = [
            await world.open_account("ann" if i < 5 else "bob", deposit=1_000) for i in range(8)
        ]
        transfers = [await world.transfer(accounts[i], accounts[7 - i], 10 + i) for i in range(6)]
        await world.close(await world.open_account("ann", "USD"))
        await settle(group, world.store)
    finally:
        await group.stop()
    return world, accounts, transfers


async def test_accounts_pages_cover_every_account_once_in_id_order() -> None:
    world, accounts, _ = await populated()
    view = AccountsView(world.documents)
    seen, after = [], None
    while True:
        page = await view.list(first=3, after=after)
        seen += [a.id for a in page.nodes]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert len(seen) == 9
    assert seen == sorted(seen)
    assert set(accounts) < set(seen)
    anns = await view.list(owner="ann", first=100)
    assert len(anns.nodes) == 6
    assert {a.owner for a in anns.nodes} == {"ann"}
    record = await view.get(accounts[0])
    assert record is not None
    assert (record.currency, record.status, record.opened_at.tzinfo is not None) == (
        "EUR",
        "OPEN",
        True,
    )
    assert await view.get("acc-missing") is None


async def test_account_rows_carry_the_exact_balance_from_the_decimal_document() -> None:
    world = memory_world()
    group = world.group(names=("accounts",))
    group.start()
    try:
        account = await world.open_account("ann", deposit=1_230)
        await settle(group, world.store)
    finally:
        await group.stop()
    doc = await world.documents.get("accounts", account)
    assert doc is not None
    assert (doc["balance"], doc["balance_minor"]) == ("12.30", 1_230)
    row = await AccountsView(world.documents).get(account)
    assert row is not None
    assert row.balance == 1_230
    # A document written before balance_minor existed held the int in balance.
    doc.pop("balance_minor")
    await world.documents.set_fields("accounts", "old", {**doc, "_id": "old", "balance": 7})
    old = await AccountsView(world.documents).get("old")
    assert old is not None
    assert old.balance == 7


async def test_statement_pages_in_stream_order() -> None:
    world, accounts, _ = await populated()
    view = StatementView(world.documents)
    first = await view.list(accounts[0], first=1)
    rest = await view.list(accounts[0], first=10, after=first.end_cursor)
    lines = first.nodes + rest.nodes
    assert [line.kind for line in lines] == ["deposit", "transfer_out"]
    assert [line.balance for line in lines] == [1_000, 990]
    assert first.has_next_page
    assert not rest.has_next_page


async def test_transfers_filter_by_status_and_account() -> None:
    world, accounts, transfers = await populated()
    view = TransfersView(world.documents)
    everything = await view.list(first=100)
    assert {t.id for t in everything.nodes} == set(transfers)
    times = [t.requested_at for t in everything.nodes]
    assert times == sorted(times, reverse=True)
    mine = await view.list(account_id=accounts[0])
    assert {t.id for t in mine.nodes} == {transfers[0]}
    inbound = await view.list(account_id=accounts[7])
    assert {t.id for t in inbound.nodes} == {transfers[0]}
    assert len((await view.list(status="COMPLETED")).nodes) == 6
    assert (await view.list(status="FAILED")).nodes == []
    record = await view.get(transfers[1])
    assert record is not None
    assert (record.amount, record.currency, record.status) == (11, "EUR", "COMPLETED")


async def test_ledger_view() -> None:
    world, _, _ = await populated()
    view = LedgerView(world.documents)
    eur = await view.get("EUR")
    assert eur is not None
    assert (eur.open_accounts, eur.total_balance, eur.total_deposited) == (8, 8_000, 8_000)
    assert [t.currency for t in await view.all()] == ["EUR", "USD"]


@pytest.mark.parametrize(
    "cursor",
    ["", "not base64!", encode_cursor("transfers", ["x", "y"]), encode_cursor("accounts", []),
     encode_cursor("accounts", [{"$gt": ""}]), encode_cursor("accounts", [True]), "A" * 5000],
)  # fmt: skip
async def test_bad_cursors_are_invalid_input(cursor: str) -> None:
    view = AccountsView(memory_world().documents)
    with pytest.raises(InvalidCursor) as raised:
        await view.list(after=cursor)
    assert raised.value.field == "after"


async def test_page_size_is_bounded() -> None:
    view = AccountsView(memory_world().documents, max_page_size=5)
    with pytest.raises(InvalidInput):
        await view.list(first=6)
    with pytest.raises(InvalidInput):
        await view.list(first=-1)
    assert (await view.list(first=0)).nodes == []


async def test_waits_return_when_reached_or_false_on_timeout() -> None:
    world = memory_world()
    waits = ReadYourWrites(world.documents, world.checkpoints, progress=world.progress)
    account = await world.open_account(deposit=5)
    assert not await waits.until_processed("accounts", 2, timeout=0.05)
    assert not await waits.until_version("accounts", account, 2, timeout=0.05)
    group = world.group(names=("accounts",))
    group.start()
    try:
        assert await waits.until_processed("accounts", 2, timeout=5)
        assert await waits.until_version("accounts", account, 2, timeout=5)
        waiting = asyncio.create_task(waits.until_version("accounts", account, 3, timeout=5))
        await world.deposit(account, 1)
        assert await waiting
        assert await waits.until_all_processed(["accounts"], 3, timeout=5)
    finally:
        await group.stop()
    assert not await waits.until_all_processed(["accounts", "ledger"], 3, timeout=0.05)


async def test_waits_see_progress_made_elsewhere(documents: DocumentStore) -> None:
    """Without an in-process progress board, durable checkpoints are polled."""
    checkpoints = CheckpointStore(documents)
    waits = ReadYourWrites(documents, checkpoints, poll_interval=0.01)

    async def elsewhere() -> None:
        await asyncio.sleep(0.05)
        await checkpoints.fence("ledger", 1, "other-process")
        await checkpoints.advance("ledger", 9, "other-process", 1)

    task = asyncio.create_task(elsewhere())
    assert await waits.until_processed("ledger", 9, timeout=5)
    await task
