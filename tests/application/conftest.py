"""Fixtures for the Application Service tests: backends and a service factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from application.ids import new_account_id, new_command_id
from application.service import ApplicationService, CommandContext
from domain.account import Deposit, OpenAccount
from domain.bank import DECIDERS, EVENTS
from store.memory import InMemoryCommandLog, InMemoryEventStore, InMemorySnapshotStore
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import CommandLog, EventStore, SnapshotStore
from tests.application.doubles import CountingStore


@dataclass
class Backend:
    """One set of stores; services built from it share them (like processes sharing a DB)."""

    store: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog

    def service(self, **options: Any) -> ApplicationService:
        return make_service(self.store, self.snapshots, self.command_log, **options)

    def counted(self) -> tuple[Backend, CountingStore]:
        """The same storage seen through a ``CountingStore``."""
        store = CountingStore(self.store)
        return Backend(store, self.snapshots, self.command_log), store


ServiceFactory = Callable[..., ApplicationService]


def make_service(
    store: EventStore, snapshots: SnapshotStore, command_log: CommandLog, **options: Any
) -> ApplicationService:
    return ApplicationService(store, snapshots, command_log, EVENTS, DECIDERS, **options)


def memory_backend() -> Backend:
    store = InMemoryEventStore()
    return Backend(store, InMemorySnapshotStore(), InMemoryCommandLog(store))


@pytest.fixture
def memory() -> Backend:
    return memory_backend()


async def open_account(service: ApplicationService, *, deposit: int = 0) -> str:
    """A new open EUR account, with ``deposit`` minor units on it if > 0."""
    account_id = new_account_id()
    await service.handle(OpenAccount(account_id, "Ada", "EUR"))
    if deposit:
        await service.handle(Deposit(account_id, deposit))
    return account_id


def with_id(**fields: Any) -> CommandContext:
    """A context with a fresh command id (and any other fields given)."""
    return CommandContext(command_id=new_command_id(), **fields)


@pytest.fixture(params=["memory", "mongo"])
def backend_database(request: pytest.FixtureRequest) -> AsyncDatabase[dict[str, Any]] | None:
    """None for the in-memory backend, else a fresh database on the embedded server."""
    if request.param == "memory":
        return None
    database: AsyncDatabase[dict[str, Any]] = request.getfixturevalue("mongo_db")
    return database


@pytest.fixture
async def backend(backend_database: AsyncDatabase[dict[str, Any]] | None) -> Backend:
    """Each shared-storage test runs on every backend (Mongo: the embedded server)."""
    if backend_database is None:
        return memory_backend()
    store = MongoEventStore(backend_database)
    snapshots = MongoSnapshotStore(backend_database)
    command_log = MongoCommandLog(backend_database)
    for part in (store, snapshots, command_log):
        await part.ensure_indexes()
    return Backend(store, snapshots, command_log)
