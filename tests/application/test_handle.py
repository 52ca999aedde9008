"""handle(): load -> decide -> append, outcomes and commit metadata."""

from __future__ import annotations

import dataclasses

import pytest

from application.ids import new_account_id, new_transfer_id
from application.repository import StreamTypeMismatch
from application.service import CommandContext, fingerprint
from domain.accounts import (
    ACCOUNT,
    AccountNotFound,
    AccountState,
    CreditForTransfer,
    DebitForTransfer,
    Deposit,
    InsufficientFunds,
    OpenAccount,
    Withdraw,
)
from domain.transfers import MarkTransferDebited, RequestTransfer
from store.protocol import CommitMetadata, NewEvent
from tests.wiring import Backend, open_account


async def test_open_and_deposit_return_new_versions_and_events(memory: Backend) -> None:
    service = memory.service()
    account_id = new_account_id()

    opened = await service.handle(OpenAccount(account_id, "Ada", "EUR"))
    deposited = await service.handle(Deposit(account_id, 1250))

    assert (opened.stream_id, opened.version, opened.duplicate) == (account_id, 1, False)
    assert [e.type for e in opened.events] == ["AccountOpened"]
    assert deposited.version == 2
    assert deposited.events[0].data["balance"] == 1250
    loaded = await service.load("account", account_id)
    assert isinstance(loaded.state, AccountState)
    assert (loaded.state.balance, loaded.version) == (1250, 2)


async def test_metadata_and_fresh_event_ids_are_recorded_on_the_commit(backend: Backend) -> None:
    service = backend.service()
    account_id = await open_account(service, deposit=500)
    context = CommandContext(
        command_id="cmd-1", correlation_id="corr-1", causation_id="evt-0", actor="user-7"
    )

    outcome = await service.handle(Withdraw(account_id, 200), context)

    stored = await backend.store.read_stream(account_id)
    print_ = fingerprint(Withdraw(account_id, 200), account_id)
    assert stored[-1].metadata == CommitMetadata("cmd-1", "corr-1", "evt-0", "user-7", print_)
    assert outcome.events == tuple(stored[-1:])
    event_ids = [e.event_id for e in stored]
    assert len(set(event_ids)) == len(event_ids) == 3
    assert all(e.startswith("evt-") for e in event_ids)
    assert stored[-1].recorded_at.tzinfo is not None


async def test_a_rejection_appends_nothing(memory: Backend) -> None:
    service = memory.service()
    account_id = await open_account(service, deposit=100)

    with pytest.raises(InsufficientFunds) as caught:
        await service.handle(Withdraw(account_id, 101))

    assert caught.value.details["balance"] == 100
    assert await memory.store.stream_version(account_id) == 2
    with pytest.raises(AccountNotFound):
        await service.handle(Deposit(new_account_id(), 1))


async def test_a_decision_without_events_is_an_outcome_at_the_current_version(
    memory: Backend,
) -> None:
    service = memory.service()
    account_id = await open_account(service)
    credit = CreditForTransfer(account_id, new_transfer_id(), 300, "EUR")
    first = await service.handle(credit)

    again = await service.handle(credit)  # a repeated leg is a no-op for the account

    assert first.version == 2
    assert (again.version, again.events, again.duplicate) == (2, (), False)
    assert await memory.store.stream_version(account_id) == 2


async def test_unknown_command_class_is_a_lookup_error(memory: Backend) -> None:
    @dataclasses.dataclass(frozen=True)
    class Unknown:
        account_id: str

    with pytest.raises(LookupError):
        await memory.service().handle(Unknown("acc-x"))


async def test_a_stream_of_another_type_is_refused(memory: Backend) -> None:
    stream_id = new_account_id()
    data = {"transfer_id": new_transfer_id()}
    await memory.store.append(
        stream_id, "transfer", 0, [NewEvent("evt-1", "TransferCompleted", data)]
    )

    with pytest.raises(StreamTypeMismatch) as caught:
        await memory.service().handle(Deposit(stream_id, 1))

    assert caught.value.details == {
        "stream_id": stream_id,
        "expected_type": "account",
        "actual_type": "transfer",
    }


async def test_two_aggregate_kinds_share_one_service(memory: Backend) -> None:
    service = memory.service()
    source = await open_account(service, deposit=1000)
    target = await open_account(service)
    transfer_id = new_transfer_id()

    requested = await service.handle(RequestTransfer(transfer_id, source, target, 400))
    await service.handle(DebitForTransfer(source, transfer_id, 400))
    await service.handle(MarkTransferDebited(transfer_id, "EUR"))

    assert (requested.stream_id, requested.version) == (transfer_id, 1)
    transfer = await service.load("transfer", transfer_id)
    assert transfer.version == 2
    assert transfer.state.status == "DEBITED"
    assert (await service.load(ACCOUNT, source)).state.balance == 600


async def test_old_event_shapes_are_upcast_on_load_and_never_rewritten(backend: Backend) -> None:
    account_id = new_account_id()
    v1 = NewEvent("evt-old", "AccountOpened", {"account_id": account_id, "owner": "Old"}, 1)
    await backend.store.append(account_id, "account", 0, [v1])
    service = backend.service()

    await service.handle(Deposit(account_id, 10))
    loaded = await service.load("account", account_id)

    assert (loaded.state.currency, loaded.state.balance) == ("EUR", 10)
    first = (await backend.store.read_stream(account_id, 1, 1))[0]
    assert (first.schema_version, dict(first.data)) == (
        1,
        {"account_id": account_id, "owner": "Old"},
    )
