"""The standard bank workload on our Application Service.

1. open ``accounts`` accounts; 2. ``rounds`` rounds of one deposit of 1.00
into every account, each a separate command (load, decide, append); 3.
rehydrate every account from the store through a *fresh* service (empty
aggregate cache, so state really comes from the store) and check the balance.
Commands carry no command id, as with the eventsourcing baseline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from application.ids import new_account_id
from application.service import ApplicationService
from bench.harness import Metrics, Stopwatch
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import Deposit, OpenAccount
from domain.aggregate import deciders, rejection_types
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from store.memory import InMemoryCommandLog, InMemoryEventStore, InMemorySnapshotStore
from store.protocol import CommandLog, EventStore, SnapshotStore

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)

DEPOSIT_MINOR = 100  # 1.00


@dataclass(frozen=True)
class Backend:
    """The three stores a service needs, on one storage engine."""

    store: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog


BackendFactory = Callable[[], Awaitable[Backend]]


async def memory_backend() -> Backend:
    store = InMemoryEventStore()
    return Backend(store, InMemorySnapshotStore(), InMemoryCommandLog(store))


def service_on(backend: Backend, *, snapshot_every: int = 100) -> ApplicationService:
    return ApplicationService(
        backend.store,
        backend.snapshots,
        backend.command_log,
        EVENTS,
        DECIDERS,
        snapshot_every=snapshot_every,
        rejection_types=rejection_types(BANK),
    )


async def open_accounts(service: ApplicationService, accounts: int) -> list[str]:
    ids = [new_account_id() for _ in range(accounts)]
    for number, account_id in enumerate(ids):
        await service.handle(OpenAccount(account_id, f"owner-{number}", "EUR"))
    return ids


async def deposit_rounds(service: ApplicationService, ids: list[str], rounds: int) -> None:
    for _ in range(rounds):
        for account_id in ids:
            await service.handle(Deposit(account_id, DEPOSIT_MINOR))


async def rehydrate_all(backend: Backend, ids: list[str], rounds: int) -> None:
    """Load every account through a fresh service and check it holds ``rounds`` deposits."""
    reader = service_on(backend)
    try:
        for account_id in ids:
            loaded = await reader.load("account", account_id)
            if loaded.state.balance != rounds * DEPOSIT_MINOR:
                raise AssertionError(f"{account_id}: balance {loaded.state.balance}")
    finally:
        await reader.close()


async def run_workload(backend: Backend, accounts: int, rounds: int) -> Metrics:
    """Steps 1-3 on ``backend``: commands/s (steps 1-2) and rehydrations/s (step 3)."""
    service = service_on(backend)
    try:
        with Stopwatch() as write:
            ids = await open_accounts(service, accounts)
            await deposit_rounds(service, ids, rounds)
        await service.drain()
    finally:
        await service.close()
    with Stopwatch() as read:
        await rehydrate_all(backend, ids, rounds)
    return {
        "commands/s": accounts * (rounds + 1) / write.seconds,
        "rehydrations/s": accounts / read.seconds,
    }
