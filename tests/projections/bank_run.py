"""A random bank workload with concurrent clients, and the checks it must pass afterwards."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from domain.aggregate import DomainError
from domain.money import format_amount
from projections.consumer import ConsumerGroup
from tests.wiring import World, dump, rebuilt, settle


@dataclass
class Ledger:
    """What the clients know they did: accepted deposits and withdrawals per currency."""

    deposited: Counter[str] = field(default_factory=Counter)
    withdrawn: Counter[str] = field(default_factory=Counter)
    transfers: list[str] = field(default_factory=list)


async def open_accounts(world: World, count: int, ledger: Ledger) -> dict[str, str]:
    """``count`` accounts (one in ten in USD, to exercise refused credits), each funded."""
    currencies: dict[str, str] = {}
    for i in range(count):
        currency = "USD" if i % 10 == 9 else "EUR"
        account = await world.open_account(f"owner-{i % 4}", currency, deposit=10_000)
        ledger.deposited[currency] += 10_000
        currencies[account] = currency
    return currencies


async def send_transfers(
    world: World, accounts: list[str], count: int, rng: random.Random, ledger: Ledger
) -> None:
    """``count`` random transfer requests from four concurrent clients."""
    plan: list[tuple[str, str, int]] = []
    for _ in range(count):
        source, target = rng.sample(accounts, 2)
        plan.append((source, target, rng.randint(1, 2_500)))

    async def client(part: list[tuple[str, str, int]]) -> None:
        for source, target, amount in part:
            ledger.transfers.append(await world.transfer(source, target, amount))

    await asyncio.gather(*(client(plan[i::4]) for i in range(4)))


async def send_cash(
    world: World, currencies: dict[str, str], count: int, rng: random.Random, ledger: Ledger
) -> None:
    """Deposits and withdrawals racing the transfers; rejected withdrawals change nothing."""
    accounts = list(currencies)
    for _ in range(count):
        account, amount = rng.choice(accounts), rng.randint(1, 3_000)
        if rng.random() < 0.5:
            await world.deposit(account, amount)
            ledger.deposited[currencies[account]] += amount
            continue
        try:
            await world.withdraw(account, amount)
        except DomainError:
            continue
        ledger.withdrawn[currencies[account]] += amount


async def run_clients(
    world: World,
    currencies: dict[str, str],
    ledger: Ledger,
    *,
    transfers: int,
    cash: int,
    seed: int,
) -> None:
    """Transfers from four clients racing deposits and withdrawals from two more."""
    await asyncio.gather(
        send_transfers(world, list(currencies), transfers, random.Random(seed), ledger),
        send_cash(world, currencies, cash // 2, random.Random(seed + 1), ledger),
        send_cash(world, currencies, cash - cash // 2, random.Random(seed + 2), ledger),
    )


async def run_bank(
    world: World, group: ConsumerGroup, *, accounts: int, transfers: int, cash: int, seed: int
) -> Ledger:
    ledger = Ledger()
    currencies = await open_accounts(world, accounts, ledger)
    group.start()
    await run_clients(world, currencies, ledger, transfers=transfers, cash=cash, seed=seed)
    await settle(group, world.store, timeout=120, checkpoints=world.checkpoints)
    return ledger


async def check_bank(world: World, ledger: Ledger) -> None:
    models = await dump(world.documents)
    statuses = {t["_id"]: t["status"] for t in models["transfers"]}
    assert set(statuses) == set(ledger.transfers)
    assert set(statuses.values()) <= {"COMPLETED", "FAILED"}
    assert all(a["balance_minor"] >= 0 for a in models["accounts"])
    assert all(line["balance"] >= 0 for line in models["account_statement"])
    balances: Counter[str] = Counter()
    for account in models["accounts"]:
        assert account["balance"] == format_amount(account["balance_minor"])
        balances[account["currency"]] += account["balance_minor"]
        lines = [x for x in models["account_statement"] if x["account_id"] == account["_id"]]
        assert sum(x["amount"] for x in lines) == account["balance_minor"]
    for currency in ledger.deposited:
        expected = ledger.deposited[currency] - ledger.withdrawn[currency]
        assert balances[currency] == expected
        totals = next(t for t in models["ledger"] if t["_id"] == currency)
        assert totals["total_balance"] == expected
        assert totals["total_deposited"] == ledger.deposited[currency]
        assert totals["total_withdrawn"] == ledger.withdrawn[currency]
    assert models == await rebuilt(world.store)
