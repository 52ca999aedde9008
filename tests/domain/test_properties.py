"""Property tests (hypothesis): balances are never negative and always explained by
the account's own events; money moved by transfers is conserved; transfers end once;
snapshots round-trip."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import (
    AccountEvent,
    CloseAccount,
    CreditForTransfer,
    DebitForTransfer,
    Deposit,
    MoneyCreditedForTransfer,
    MoneyDebitedForTransfer,
    MoneyDeposited,
    MoneyRefundedForTransfer,
    MoneyWithdrawn,
    OpenAccount,
    RefundForTransfer,
    Withdraw,
)
from domain.aggregate import deciders
from domain.money import MAX_AMOUNT_MINOR
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import (
    RequestTransfer,
    TransferCompleted,
    TransferCreditRefused,
    TransferFailed,
    TransferRefunded,
)
from tests.domain.sim import Bank

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)

ACCOUNTS = ["acc-a", "acc-b", "acc-c"]
TRANSFERS = ["trf-1", "trf-2", "trf-3", "trf-4", "trf-5"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

account_ids = st.sampled_from(ACCOUNTS)
transfer_ids = st.sampled_from(TRANSFERS)
amounts = st.integers(min_value=1, max_value=1500) | st.sampled_from(
    [0, -1, MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR + 1]
)
currencies = st.sampled_from(["EUR", "EUR", "USD"])

account_commands = st.one_of(
    st.builds(OpenAccount, account_ids, st.sampled_from(["Ada", "Bob", ""]), currencies),
    st.builds(Deposit, account_ids, amounts),
    st.builds(Withdraw, account_ids, amounts),
    st.builds(CloseAccount, account_ids),
)
leg_commands = st.one_of(
    st.builds(DebitForTransfer, account_ids, transfer_ids, amounts),
    st.builds(CreditForTransfer, account_ids, transfer_ids, amounts, currencies),
    st.builds(RefundForTransfer, account_ids, transfer_ids, amounts),
)
saga_actions = st.one_of(
    account_commands,
    st.builds(RequestTransfer, transfer_ids, account_ids, account_ids, amounts),
    st.tuples(st.just("step"), transfer_ids),
)

_SIGN: dict[type, int] = {
    MoneyDeposited: 1,
    MoneyCreditedForTransfer: 1,
    MoneyRefundedForTransfer: 1,
    MoneyWithdrawn: -1,
    MoneyDebitedForTransfer: -1,
}


def explained_balance(bank: Bank, account_id: str) -> int:
    """Deposits + incoming legs + refunds - withdrawals - outgoing legs, from the log."""
    total = 0
    for event in bank.log:
        if getattr(event, "account_id", None) == account_id and type(event) in _SIGN:
            total += _SIGN[type(event)] * event.amount
            assert event.balance == total, "an event's balance is the running balance"
    return total


def check_accounts(bank: Bank) -> None:
    for account_id in ACCOUNTS:
        state = bank.state("account", account_id)
        assert state.balance >= 0
        assert state.balance == explained_balance(bank, account_id)


@SETTINGS
@given(st.lists(st.one_of(account_commands, leg_commands), max_size=40))
def test_balances_are_never_negative_and_explained_by_own_events(commands: list[Any]) -> None:
    bank = Bank()
    for command in commands:
        bank.handle(command)
        check_accounts(bank)
    refunds = Counter(
        (e.account_id, e.transfer_id) for e in bank.log if isinstance(e, MoneyRefundedForTransfer)
    )
    debits = {
        (e.account_id, e.transfer_id): e.amount
        for e in bank.log
        if isinstance(e, MoneyDebitedForTransfer)
    }
    for key, count in refunds.items():
        assert count == 1, "a refund happens once"
        assert key in debits, "a refund gives back an earlier debit"


prelude = st.lists(
    st.tuples(currencies, st.integers(min_value=0, max_value=2000)),
    min_size=len(ACCOUNTS),
    max_size=len(ACCOUNTS),
).map(
    lambda opened: [
        command
        for account_id, (currency, funds) in zip(ACCOUNTS, opened, strict=True)
        for command in (OpenAccount(account_id, "Ada", currency), Deposit(account_id, funds))
    ]
)
"""Opens every account (random currency) and funds it, so transfers get somewhere."""


def run_saga(actions: list[Any], *, conserving: bool = True) -> Bank:
    """Run the actions, then drain every transfer; check the accounts after each step.

    ``conserving``: only transfers move money between accounts (raw leg
    commands, which the saga never sends alone, can create money).
    """
    bank = Bank()
    for action in actions:
        if isinstance(action, tuple):
            bank.step(action[1])
        else:
            bank.handle(action)
        check_accounts(bank)
        assert not conserving or is_conserved(bank)
    for _ in range(4):  # drain: each transfer needs at most 3 more steps
        for transfer_id in TRANSFERS:
            bank.step(transfer_id)
            check_accounts(bank)
            assert not conserving or is_conserved(bank)
    return bank


def is_conserved(bank: Bank) -> bool:
    """Money never appears or vanishes: balances + money in flight == deposits - withdrawals."""
    external = sum(
        e.amount if isinstance(e, MoneyDeposited) else -e.amount
        for e in bank.log
        if isinstance(e, MoneyDeposited | MoneyWithdrawn)
    )
    balances: int = sum(bank.state("account", a).balance for a in ACCOUNTS)
    return balances + money_in_flight(bank) == external


def money_in_flight(bank: Bank) -> int:
    """Debited from the source, neither credited (completed) nor refunded yet."""
    held = 0
    for transfer_id in TRANSFERS:
        t = bank.state("transfer", transfer_id)
        if t.exists and t.status == "DEBITED" and not t.refunded:
            held += t.amount
    return held


@SETTINGS
@given(prelude, st.lists(saga_actions, max_size=40))
def test_transfers_conserve_money_and_end_exactly_once(
    start: list[Any], actions: list[Any]
) -> None:
    bank = run_saga(start + actions)
    assert money_in_flight(bank) == 0
    endings = Counter(
        e.transfer_id for e in bank.log if isinstance(e, TransferCompleted | TransferFailed)
    )
    assert all(count == 1 for count in endings.values())
    refused: set[str] = set()
    for event in bank.log:
        if isinstance(event, TransferCreditRefused):
            refused.add(event.transfer_id)
        if isinstance(event, TransferRefunded):
            assert event.transfer_id in refused, "a refund only follows a refused credit"
    for transfer_id in TRANSFERS:
        check_settled(bank, transfer_id)


def check_settled(bank: Bank, transfer_id: str) -> None:
    """After draining, every requested transfer has ended."""
    t = bank.state("transfer", transfer_id)
    assert not t.exists or t.status in ("COMPLETED", "FAILED")


def legs_of(bank: Bank, transfer_id: str) -> list[AccountEvent]:
    return [e for e in bank.log if getattr(e, "transfer_id", None) == transfer_id]


@SETTINGS
@given(prelude, st.lists(saga_actions, max_size=30))
def test_completed_transfers_moved_the_same_amount_in_one_currency(
    start: list[Any], actions: list[Any]
) -> None:
    bank = run_saga(start + actions)
    for transfer_id in TRANSFERS:
        t = bank.state("transfer", transfer_id)
        if t.status != "COMPLETED":
            continue
        legs = legs_of(bank, transfer_id)
        debit = [e for e in legs if isinstance(e, MoneyDebitedForTransfer)]
        credit = [e for e in legs if isinstance(e, MoneyCreditedForTransfer)]
        assert [(e.account_id, e.amount) for e in debit] == [(t.from_account_id, t.amount)]
        assert [(e.account_id, e.amount) for e in credit] == [(t.to_account_id, t.amount)]
        assert bank.state("account", t.to_account_id).currency == debit[0].currency == t.currency


@SETTINGS
@given(prelude, st.lists(st.one_of(saga_actions, leg_commands), max_size=30))
def test_snapshots_round_trip(start: list[Any], actions: list[Any]) -> None:
    bank = run_saga(start + actions, conserving=False)
    deciders = {d.stream_type: d for d in DECIDERS.values()}
    for (stream_type, _), state in bank.states.items():
        decider = deciders[stream_type]
        stored = json.loads(json.dumps(decider.to_snapshot(state)))
        assert decider.from_snapshot(decider.to_snapshot(state)) == state
        assert decider.from_snapshot(stored) == state
    for decider in deciders.values():
        initial = decider.initial_state()
        assert decider.from_snapshot(decider.to_snapshot(initial)) == initial


def test_source_closed_while_its_transfer_is_in_flight_gets_the_refund() -> None:
    bank = Bank()
    for command in (
        OpenAccount("acc-a", "Ada", "EUR"),
        OpenAccount("acc-b", "Bob", "USD"),
        Deposit("acc-a", 500),
        RequestTransfer("trf-1", "acc-a", "acc-b", 500),
    ):
        bank.handle(command)
    bank.step("trf-1")  # debit: acc-a now at zero
    assert bank.handle(CloseAccount("acc-a")) != []
    bank.step("trf-1")  # credit refused: USD account
    bank.step("trf-1")  # refund to the closed account, transfer fails
    assert bank.state("transfer", "trf-1").status == "FAILED"
    assert bank.state("account", "acc-a").balance == 500
    assert is_conserved(bank)
