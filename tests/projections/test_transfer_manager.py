"""The transfer process manager: the workflow, its metadata, and exactly-once money moves."""

from __future__ import annotations

from application.service import ApplicationService
from domain.account import ACCOUNT
from projections.transfer_manager import TransferManager, derived_command_id
from tests.projections.world import World, memory_world


async def drive(world: World, manager: TransferManager, rounds: int = 10) -> None:
    """Feed the manager everything in the store, repeatedly, until nothing new appears."""
    for _ in range(rounds):
        head = await world.store.head_position()
        await manager.handle_batch(await world.store.read_all(0, 100_000))
        if await world.store.head_position() == head:
            return


async def balance(service: ApplicationService, account_id: str) -> int:
    loaded = await service.load(ACCOUNT, account_id)
    return int(loaded.state.balance)


async def test_completed_transfer_moves_the_money_once_despite_redelivery() -> None:
    world = memory_world()
    source = await world.open_account(deposit=1_000)
    target = await world.open_account()
    transfer = await world.transfer(source, target, 300)
    await drive(world, TransferManager(world.service, world.store))
    head = await world.store.head_position()
    # A second instance (e.g. after a takeover) sees every event again.
    await drive(world, TransferManager(world.service, world.store))
    assert await world.store.head_position() == head
    assert (await balance(world.service, source), await balance(world.service, target)) == (
        700,
        300,
    )
    types = [e.type for e in await world.store.read_stream(transfer)]
    assert types == ["TransferRequested", "TransferDebited", "TransferCompleted"]


async def test_commands_carry_derived_ids_and_the_workflow_metadata() -> None:
    world = memory_world()
    source = await world.open_account(deposit=50)
    target = await world.open_account()
    transfer = await world.transfer(source, target, 20)
    await drive(world, TransferManager(world.service, world.store))
    requested = (await world.store.read_stream(transfer))[0]
    debit = next(
        e for e in await world.store.read_stream(source) if e.type == "MoneyDebitedForTransfer"
    )
    assert debit.metadata.command_id == derived_command_id(requested.event_id, "debit")
    assert debit.metadata.causation_id == requested.event_id
    assert debit.metadata.correlation_id == transfer
    assert debit.metadata.actor == "transfer-manager"
    assert derived_command_id("evt-1", "debit") == derived_command_id("evt-1", "debit")
    assert derived_command_id("evt-1", "debit") != derived_command_id("evt-1", "fail")


async def test_refused_credit_is_refunded_and_fails_the_transfer() -> None:
    world = memory_world()
    source = await world.open_account(deposit=500)
    closed = await world.open_account()
    await world.close(closed)
    missing = "acc-" + "0" * 32
    to_closed = await world.transfer(source, closed, 100)
    to_missing = await world.transfer(source, missing, 100)
    too_much = await world.transfer(source, closed, 10_000)
    await drive(world, TransferManager(world.service, world.store))
    assert await balance(world.service, source) == 500
    for transfer, reason in [
        (to_closed, "account_closed"),
        (to_missing, "account_not_found"),
        (too_much, "insufficient_funds"),
    ]:
        last = (await world.store.read_stream(transfer))[-1]
        assert (last.type, last.data["reason"]) == ("TransferFailed", reason)
