"""The transfer process manager: the workflow, its metadata, and exactly-once money moves."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable

import pytest

from application.service import ApplicationService
from domain.accounts import ACCOUNT
from domain.aggregate import DomainError, InvalidInput
from domain.money import MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR
from domain.transfers import TRANSFER, FailTransfer
from projections.checkpoints import StatusReporter
from projections.transfers import TransferManager, TransfersView, derived_command_id, retry_parked
from runtime.metrics import Metrics
from runtime.operations import ProjectionRetrier
from runtime.probes import parked_refresher
from store.protocol import CommandRejection
from tests.projections.money import EVERYTHING, check_money, check_read_models, head
from tests.wiring import CONSUMERS, EVENTS, PROJECTORS, World, memory_world, settle


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
    await drive(world, TransferManager(world.service, world.store, registry=EVENTS))
    head = await world.store.head_position()
    # A second instance (e.g. after a takeover) sees every event again.
    await drive(world, TransferManager(world.service, world.store, registry=EVENTS))
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
    await drive(world, TransferManager(world.service, world.store, registry=EVENTS))
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
    await drive(world, TransferManager(world.service, world.store, registry=EVENTS))
    assert await balance(world.service, source) == 500
    for transfer, reason in [
        (to_closed, "account_closed"),
        (to_missing, "account_not_found"),
        (too_much, "insufficient_funds"),
    ]:
        last = (await world.store.read_stream(transfer))[-1]
        assert (last.type, last.data["reason"]) == ("TransferFailed", reason)


# -- a compensation is never refused ------------------------------------------------


async def test_a_deposit_filling_the_account_between_debit_and_refund_cannot_block_the_refund() -> (
    None
):
    world = memory_world()
    group = world.group(names=PROJECTORS)
    group.start()
    try:
        source = await world.open_account(deposit=MAX_AMOUNT_MINOR)
        closed = await world.open_account()
        await world.close(closed)
        transfer = await world.transfer(source, closed, MAX_AMOUNT_MINOR)
        manager = TransferManager(world.service, world.store, registry=EVENTS)
        # The manager debits the source (it reacts to TransferRequested only, so far).
        await manager.handle_batch(await world.store.read_all(0, EVERYTHING))
        assert await balance(world.service, source) == 0
        # Before the refused credit is refunded, deposits fill the account to its maximum.
        for _ in range(MAX_BALANCE_MINOR // MAX_AMOUNT_MINOR):
            await world.deposit(source, MAX_AMOUNT_MINOR)
        assert await balance(world.service, source) == MAX_BALANCE_MINOR
        await drive(world, manager)
        # The refund went through, past the maximum; nothing was parked.
        assert await balance(world.service, source) == MAX_BALANCE_MINOR + MAX_AMOUNT_MINOR
        types = [e.type for e in await world.store.read_stream(transfer)]
        assert types == [
            "TransferRequested", "TransferDebited", "TransferCreditRefused",
            "TransferRefunded", "TransferFailed",
        ]  # fmt: skip
        # Over its maximum the account takes no deposit until it is back under it.
        with pytest.raises(InvalidInput):
            await world.deposit(source, 1)
        assert await check_money(world) == {transfer: "FAILED"}
        models = await check_read_models(world, group)
    finally:
        await group.stop()
    account = next(a for a in models["accounts"] if a["_id"] == source)
    assert account["balance_minor"] == MAX_BALANCE_MINOR + MAX_AMOUNT_MINOR


async def test_a_debit_landing_after_its_transfer_failed_is_refunded() -> None:
    # A FailTransfer landing after the debit committed (as from a stale twin that
    # saw the debit refused): the debit must be given back.
    world = memory_world()
    group = world.group(names=PROJECTORS)
    group.start()
    try:
        source = await world.open_account(deposit=500)
        target = await world.open_account()
        transfer = await world.transfer(source, target, 200)
        manager = TransferManager(world.service, world.store, registry=EVENTS)
        await manager.handle_batch(await world.store.read_all(0, EVERYTHING))  # the debit
        await world.send(FailTransfer(transfer, "insufficient_funds"))  # the stale twin
        await drive(world, manager)
        assert (await balance(world.service, source), await balance(world.service, target)) == (
            500,
            0,
        )
        types = [e.type for e in await world.store.read_stream(transfer)]
        assert types[-2:] == ["TransferDebitedAfterFailure", "TransferRefunded"]
        assert await check_money(world) == {transfer: "FAILED"}
        await check_read_models(world, group)
    finally:
        await group.stop()


# -- a step refused for good is parked, and a retry decides it again ------------------


async def test_a_step_refused_for_good_is_parked_the_manager_goes_on_and_a_retry_redecides_it() -> (
    None
):
    world = memory_world()
    group = world.group(names=PROJECTORS)
    group.start()
    try:
        source = await world.open_account(deposit=1_000)
        closed = await world.open_account()
        await world.close(closed)
        stuck = await world.transfer(source, closed, 300)
        manager = TransferManager(world.service, world.store, registry=EVENTS)
        await drive_until(world, manager, lambda types: "TransferCreditRefused" in types, stuck)
        # A rejection of the refund (a full account, under a rule that refused
        # refunds) is stored under the refund's derived command id.
        refused = next(
            e for e in await world.store.read_stream(stuck) if e.type.endswith("Refused")
        )
        await world.command_log.record_rejection(
            CommandRejection(
                command_id=derived_command_id(refused.event_id, "refund"),
                stream_id=source,
                code="invalid_input",
                message="the account balance would exceed its maximum",
                details={"field": "amount", "value": 300},
            )
        )
        await drive(world, manager)
        # Parked, visibly, and the manager went on with the next transfer.
        state = (await world.service.load(TRANSFER, stuck)).state
        assert (state.status, state.parked_step, state.parks) == ("DEBITED", "refund", 1)
        later_target = await world.open_account()
        later = await world.transfer(source, later_target, 100)
        await drive(world, manager)
        assert (await world.service.load(TRANSFER, later)).state.status == "COMPLETED"
        await settle(group, world.store)
        view = TransfersView(world.documents)
        parked = (await view.list(status="NEEDS_ATTENTION")).nodes
        assert [(t.id, t.parked_step, t.parked_attempt) for t in parked] == [(stuck, "refund", 1)]
        assert "invalid_input" in str(parked[0].reason)
        metrics = Metrics()
        await parked_refresher({"transfer_manager": view.count_parked})(metrics)
        assert metrics.registry.get_sample_value("ledger_transfers_parked") == 1
        status = StatusReporter(
            world.store, world.checkpoints, world.leases, CONSUMERS,
            attention={"transfer_manager": view.count_parked},
        )  # fmt: skip
        assert await parked_by_consumer(status) == {"transfer_manager": 1}
        # The operator retries (as ``retryProjection`` does, wired as in runtime/bootstrap.py):
        # the refund is decided again under a new command id.
        retrier = ProjectionRetrier(
            world.checkpoints,
            CONSUMERS,
            followups={"transfer_manager": functools.partial(retry_parked, world.service, view)},
        )
        await retrier.retry("transfer_manager")
        assert await retry_parked(world.service, view) == 1  # read model not caught up: a no-op
        await drive(world, manager)
        assert await balance(world.service, source) == 1_000 - 100
        assert await check_money(world) == {stuck: "FAILED", later: "COMPLETED"}
        await check_read_models(world, group)
        assert (await view.list(status="NEEDS_ATTENTION")).nodes == []
        await parked_refresher({"transfer_manager": view.count_parked})(metrics)
        assert metrics.registry.get_sample_value("ledger_transfers_parked") == 0
        assert await parked_by_consumer(status) == {}
        record = await view.get(stuck)
        assert record is not None
        assert (record.status, record.reason, record.parked_step) == (
            "FAILED",
            "account_closed",
            None,
        )
        retried = [
            e for e in await world.store.read_stream(stuck) if e.type == "TransferStepRetried"
        ]
        assert len(retried) == 1
    finally:
        await group.stop()


async def drive_until(
    world: World, manager: TransferManager, done: Callable[[list[str]], bool], transfer: str
) -> None:
    """Feed the manager one event at a time until ``done(types of transfer's events)``."""
    position = 0
    for _ in range(1_000):
        if done([e.type for e in await world.store.read_stream(transfer)]):
            return
        events = await world.store.read_all(position, 1)
        assert events, "the workflow stopped before the condition"
        await manager.handle_batch(events)
        position = events[-1].position or position
    raise AssertionError("condition not reached")


# -- two manager instances at once -------------------------------------------------------


async def run_manager(
    world: World, manager: TransferManager, batch: int, stop: asyncio.Event
) -> None:
    """A consumer loop without a lease, as a stale lease holder resumed after a pause runs."""
    position = 0
    for _ in range(100_000):
        events = await world.store.read_all(position, batch)
        if events:
            await manager.handle_batch(events)
            position = events[-1].position or position
        elif stop.is_set():
            return
        else:
            await asyncio.sleep(0.001)
    raise AssertionError("manager loop did not finish")


async def clients(world: World, seed: int) -> list[str]:
    """Transfers of every outcome racing deposits, withdrawals and a closing account."""
    rng = random.Random(seed)
    eur = [await world.open_account(deposit=1_000) for _ in range(6)]
    usd = await world.open_account(currency="USD", deposit=1_000)
    closing = await world.open_account()
    transfers = []
    for number in range(60):
        source = rng.choice(eur)
        target = rng.choice([a for a in [*eur, usd, closing] if a != source])
        transfers.append(await world.transfer(source, target, rng.randint(1, 400)))
        if number == 20:
            with contextlib.suppress(DomainError):
                await world.close(closing)
        if rng.random() < 0.3:
            await world.deposit(rng.choice(eur), rng.randint(1, 300))
        if rng.random() < 0.2:
            with contextlib.suppress(DomainError):
                await world.withdraw(rng.choice(eur), rng.randint(1, 300))
        await asyncio.sleep(0)
    return transfers


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_two_manager_instances_at_once_move_every_transfer_exactly_once(seed: int) -> None:
    world = memory_world()
    group = world.group(names=PROJECTORS)
    group.start()
    stop = asyncio.Event()
    twins = [
        asyncio.ensure_future(
            run_manager(
                world, TransferManager(world.service, world.store, registry=EVENTS), b, stop
            )
        )
        for b in (1, 7)
    ]
    try:
        transfers = await asyncio.wait_for(clients(world, seed), 30)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*twins), 30)
        # Both copies saw everything; a third pass changes nothing.
        before = await head(world.store)
        await drive(world, TransferManager(world.service, world.store, registry=EVENTS))
        assert await head(world.store) == before
        statuses = await check_money(world)
        assert set(statuses) == set(transfers)
        assert set(statuses.values()) == {"COMPLETED", "FAILED"}
        await check_read_models(world, group)
    finally:
        stop.set()
        for task in twins:
            task.cancel()
        await asyncio.gather(*twins, return_exceptions=True)
        await group.stop()


async def parked_by_consumer(status: StatusReporter) -> dict[str, int]:
    """``needs_attention`` of each consumer that has parked something."""
    return {r.name: r.needs_attention for r in await status.report() if r.needs_attention}
