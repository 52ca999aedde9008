"""The standard bank workload on the ``eventsourcing`` library (the baseline).

An Account aggregate equivalent to ours: opened with owner and currency,
deposits that must be positive and need an open account, balance in minor
units. The application is configured as that library is out of the box
(no aggregate cache, no snapshots), on its POPO (in-memory) recorder or its
SQLite recorder (a file in a temporary directory).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.harness import Metrics, Stopwatch


class EsAccount(Aggregate):
    """An account as the eventsourcing library models it."""

    @event("Opened")
    def __init__(self, owner: str, currency: str) -> None:
        self.owner = owner
        self.currency = currency
        self.balance = 0
        self.closed = False

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        if self.closed:
            raise ValueError("account closed")
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount


class EsBank(Application[UUID]):
    """Load, decide, save: one command per call, as our Application Service does."""

    def open_account(self, owner: str, currency: str) -> UUID:
        account = EsAccount(owner, currency)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amount: int) -> None:
        account: EsAccount = self.repository.get(account_id)
        account.deposit(amount)
        self.save(account)

    def balance(self, account_id: UUID) -> int:
        account: EsAccount = self.repository.get(account_id)
        return account.balance


def run_workload(bank: EsBank, accounts: int, rounds: int) -> Metrics:
    """Open ``accounts``, deposit 1.00 ``rounds`` times into each, rehydrate and check."""
    with Stopwatch() as write:
        ids = [bank.open_account(f"owner-{i}", "EUR") for i in range(accounts)]
        for _ in range(rounds):
            for account_id in ids:
                bank.deposit(account_id, 100)
    with Stopwatch() as read:
        balances = [bank.balance(account_id) for account_id in ids]
    if any(balance != rounds * 100 for balance in balances):
        raise AssertionError("eventsourcing workload: wrong balance after rehydration")
    commands = accounts * (rounds + 1)
    return {
        "commands/s": commands / write.seconds,
        "rehydrations/s": accounts / read.seconds,
    }


def popo_bank() -> EsBank:
    return EsBank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def sqlite_bank(db_file: Path) -> EsBank:
    env: dict[str, Any] = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(db_file),
    }
    return EsBank(env=env)


def popo_run(accounts: int, rounds: int) -> Metrics:
    return run_workload(popo_bank(), accounts, rounds)


def sqlite_run(accounts: int, rounds: int) -> Metrics:
    """One run on a fresh SQLite file, so every run starts from the same size."""
    with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
        bank = sqlite_bank(Path(tmp) / "es.sqlite")
        try:
            return run_workload(bank, accounts, rounds)
        finally:
            bank.close()
