"""Demo data for a fresh database: a few accounts, deposits and transfers.

Every id and command id is derived from a fixed name, so running the seed
again changes nothing (the write side answers each repeated command id with
its first outcome). The transfers cover every path of the process manager:
completed ones, one refused for lack of funds, one whose credit is refused
because the currencies differ (debited, refunded, failed).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from application.service import ApplicationService, CommandContext
from domain.account_messages import Deposit, OpenAccount, Withdraw
from domain.money import parse_amount
from domain.transfer_messages import RequestTransfer

_NAMESPACE = uuid.UUID("3b0d2c6e-8f43-4c1e-9d0a-5e2f7a9b1c44")
ACCOUNTS = (("alice", "EUR"), ("bob", "EUR"), ("carol", "EUR"), ("dave", "USD"), ("erin", "EUR"))
DEPOSITS = (
    ("alice", "1000.00"),
    ("bob", "250.00"),
    ("carol", "75.50"),
    ("dave", "500.00"),
    ("erin", "20.00"),
)
WITHDRAWALS = (("bob", "40.00"),)
TRANSFERS = (
    ("alice", "bob", "120.00"),  # completes
    ("bob", "carol", "30.25"),  # completes
    ("carol", "alice", "10.00"),  # completes
    ("alice", "dave", "5.00"),  # EUR -> USD: debited, credit refused, refunded, failed
    ("erin", "alice", "50.00"),  # insufficient funds: failed at the debit
)
FINAL = frozenset({"COMPLETED", "FAILED"})


def _hex(name: str) -> str:
    return uuid.uuid5(_NAMESPACE, name).hex


def account_id(owner: str) -> str:
    return f"acc-{_hex(f'account/{owner}')}"


def transfer_id(index: int) -> str:
    return f"trf-{_hex(f'transfer/{index}')}"


@dataclass(frozen=True)
class SeedReport:
    accounts: dict[str, str]  # owner -> account id
    commands: int
    duplicates: int
    transfers: dict[str, str]  # transfer id -> final status (or last seen)


def _commands() -> list[tuple[str, object]]:
    """(step name, command) in the order they are sent."""
    steps: list[tuple[str, object]] = []
    steps += [(f"open/{o}", OpenAccount(account_id(o), o, c)) for o, c in ACCOUNTS]
    steps += [(f"deposit/{o}", Deposit(account_id(o), parse_amount(a))) for o, a in DEPOSITS]
    steps += [(f"withdraw/{o}", Withdraw(account_id(o), parse_amount(a))) for o, a in WITHDRAWALS]
    steps += [
        (
            f"transfer/{i}",
            RequestTransfer(transfer_id(i), account_id(s), account_id(t), parse_amount(a)),
        )
        for i, (s, t, a) in enumerate(TRANSFERS)
    ]
    return steps


async def seed(
    service: ApplicationService, transfers_view: Any, *, wait_seconds: float = 20.0
) -> SeedReport:
    """Send the demo commands through ``service``; wait (bounded) for the transfers to settle."""
    duplicates = 0
    steps = _commands()
    for step, command in steps:
        context = CommandContext(
            command_id=f"seed-{_hex(step)}", correlation_id="seed", actor="seed"
        )
        outcome = await service.handle(command, context)
        duplicates += int(outcome.duplicate)
    statuses = await _settle(transfers_view, wait_seconds)
    accounts = {owner: account_id(owner) for owner, _ in ACCOUNTS}
    return SeedReport(accounts, len(steps), duplicates, statuses)


async def _settle(transfers_view: Any, wait_seconds: float) -> dict[str, str]:
    ids = [transfer_id(i) for i in range(len(TRANSFERS))]
    deadline = time.monotonic() + wait_seconds
    while True:
        statuses = {}
        for tid in ids:
            record = await transfers_view.get(tid)
            statuses[tid] = record.status if record is not None else "PENDING"
        if set(statuses.values()) <= FINAL or time.monotonic() >= deadline:
            return statuses
        await asyncio.sleep(0.1)
