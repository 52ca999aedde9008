"""A whole read side in one process for tests: stores, service, documents, consumers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from application.ids import new_account_id, new_command_id, new_transfer_id
from application.service import ApplicationService, CommandContext
from domain.account_messages import CloseAccount, Deposit, OpenAccount, Withdraw
from domain.bank import DECIDERS, EVENTS
from domain.transfer_messages import RequestTransfer
from projections.catalog import (
    CONSUMERS,
    PROJECTORS,
    consumer_group,
    projector_factories,
    standard_handlers,
)
from projections.checkpoints import CheckpointStore
from projections.consumer import ConsumerSettings
from projections.consumer_group import ConsumerGroup
from projections.documents import Document, DocumentStore, Query
from projections.documents_memory import InMemoryDocumentStore
from projections.progress import ProgressBoard
from projections.projector import ChangePublisher
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from store.protocol import CommandLog, EventStore, Leases, SnapshotStore

FAST = ConsumerSettings(
    batch_size=100,
    poll_interval=0.01,
    lease_ttl=1.0,
    max_attempts=3,
    backoff_initial=0.001,
    backoff_max=0.01,
)


@dataclass
class World:
    store: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog
    documents: DocumentStore
    leases: Leases
    progress: ProgressBoard = field(default_factory=ProgressBoard)

    def __post_init__(self) -> None:
        self.checkpoints = CheckpointStore(self.documents)
        self.service = ApplicationService(
            self.store, self.snapshots, self.command_log, EVENTS, DECIDERS
        )

    def group(
        self,
        *,
        names: tuple[str, ...] = CONSUMERS,
        owner: str | None = None,
        hub: ChangePublisher | None = None,
        settings: ConsumerSettings = FAST,
    ) -> ConsumerGroup:
        handlers = standard_handlers(
            self.documents, self.store, sender=self.service, hub=hub, names=names
        )
        return consumer_group(
            handlers,
            self.store,
            self.checkpoints,
            self.leases,
            settings=settings,
            progress=self.progress,
            owner=owner,
        )

    # -- commands ------------------------------------------------------------

    async def send(self, command: Any) -> Any:
        return await self.service.handle(command, CommandContext(command_id=new_command_id()))

    async def open_account(
        self, owner: str = "ann", currency: str = "EUR", deposit: int = 0
    ) -> str:
        account_id = new_account_id()
        await self.send(OpenAccount(account_id, owner, currency))
        if deposit:
            await self.send(Deposit(account_id, deposit))
        return account_id

    async def deposit(self, account_id: str, amount: int) -> None:
        await self.send(Deposit(account_id, amount))

    async def withdraw(self, account_id: str, amount: int) -> None:
        await self.send(Withdraw(account_id, amount))

    async def close(self, account_id: str) -> None:
        await self.send(CloseAccount(account_id))

    async def transfer(self, source: str, target: str, amount: int) -> str:
        transfer_id = new_transfer_id()
        await self.send(RequestTransfer(transfer_id, source, target, amount))
        return transfer_id


def memory_world() -> World:
    store = InMemoryEventStore()
    return World(
        store,
        InMemorySnapshotStore(),
        InMemoryCommandLog(store),
        InMemoryDocumentStore(),
        InMemoryLeases(),
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Return once ``predicate()`` holds; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


async def settle(
    group: ConsumerGroup,
    store: EventStore,
    timeout: float = 20.0,  # noqa: ASYNC109
    checkpoints: CheckpointStore | None = None,
) -> int:
    """Wait until every consumer of ``group`` reached a head that stopped moving.

    With ``checkpoints``, progress made by other instances (another group) counts too.
    """
    deadline = time.monotonic() + timeout
    stable, last_head = 0, -1
    while stable < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled: {await group.statuses()}")
        await store.sequence()
        head = await store.head_position()
        durable = await checkpoints.load_all(group.names) if checkpoints is not None else {}
        caught_up = all(
            max(group[name].position, durable[name].position if durable else 0) >= head
            for name in group.names
        )
        for name in group.names:
            if group[name].state == "stopped_on_error":
                raise AssertionError(f"{name} stopped: {group[name].last_error}")
        stable = stable + 1 if caught_up and head == last_head else 0
        last_head = head
        await asyncio.sleep(0.02)
    return last_head


async def dump(documents: DocumentStore, names: tuple[str, ...] = PROJECTORS) -> dict[str, Any]:
    """Every document of each logical read-model collection, in ``_id`` order."""
    result: dict[str, list[Document]] = {}
    for name in names:
        result[name] = await documents.find(await documents.resolve(name, fresh=True), Query())
    return result


async def rebuilt(store: EventStore, batch_size: int = 250) -> dict[str, Any]:
    """The read models projected from scratch into a fresh in-memory document store."""
    documents = InMemoryDocumentStore()
    for name, factory in projector_factories(documents, store).items():
        handler = factory(name)
        await handler.prepare()
        position = 0
        while events := await store.read_all(position, batch_size):
            await handler.handle_batch(events)
            position = events[-1].position or position
    return await dump(documents)
