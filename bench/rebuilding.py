"""Contenders of the rebuild benchmark, and the event log they read.

- ``rebuild_contender``: ``Rebuilder.rebuild("accounts")``, the whole operation
  (fresh collection and its indexes, leases, pause, swap, checkpoint, drop of
  the old collection);
- ``loop_contender`` (diagnostic): a plain sequential loop, each ``read_all``
  batch handed to an ``AccountsProjector`` (fresh collection) before the next
  read: no prefetch (the Rebuilder reads ahead while writing), no fixed costs;
- ``memory_raw_read``: ``store.read_all`` batches, nothing else.
"""

from __future__ import annotations

import asyncio
import itertools

from bench.harness import Contender, Metrics, Stopwatch
from bench.workload import DEPOSIT_MINOR, EVENTS, Backend, open_accounts, service_on
from domain.accounts import Deposit
from projections.accounts import READ_SIDE as ACCOUNTS_READ
from projections.accounts import AccountsProjector
from projections.checkpoints import CheckpointStore
from projections.documents import DocumentStore
from projections.projector import ConsumerDeps, ReadSides
from projections.rebuild import Rebuilder
from store.protocol import Leases

_runs = itertools.count(1)


async def fill(backend: Backend, accounts: int, rounds: int) -> int:
    """Write the standard workload's events and sequence them all; the head position.

    Each round's deposits go to different accounts, so they are sent 16 at a
    time (only to fill faster; filling is not measured).
    """
    service = service_on(backend)
    ids = await open_accounts(service, accounts)
    gate = asyncio.Semaphore(16)

    async def deposit(account_id: str) -> None:
        async with gate:
            await service.handle(Deposit(account_id, DEPOSIT_MINOR))

    for _ in range(rounds):
        await asyncio.gather(*(deposit(account_id) for account_id in ids))
    await service.close()
    for _ in range(10_000):  # bounded: each pass stamps up to 500 commits
        if not await backend.store.sequence():
            break
    return await backend.store.head_position()


def rebuild_contender(
    backend: Backend, documents: DocumentStore, leases: Leases, batch: int
) -> Contender:
    rebuilder = Rebuilder(
        backend.store,
        documents,
        CheckpointStore(documents),
        leases,
        ReadSides([ACCOUNTS_READ]).factories(ConsumerDeps(documents, backend.store, EVENTS)),
        batch_size=batch,
        drop_grace=0.0,
    )

    async def run() -> Metrics:
        with Stopwatch() as watch:
            result = await rebuilder.rebuild("accounts")
        return {"events/s": result.events / watch.seconds}

    return run


def loop_contender(backend: Backend, documents: DocumentStore, batch: int) -> Contender:
    async def run() -> Metrics:
        collection = f"accounts_bench_{next(_runs)}"
        projector = AccountsProjector(documents, physical=collection, registry=EVENTS)
        await projector.prepare()  # indexes: not timed, unlike in the full rebuild
        position = count = 0
        with Stopwatch() as watch:
            for _ in range(1_000_000):  # bounded
                events = await backend.store.read_all(position, batch)
                if not events:
                    break
                await projector.handle_batch(events)
                count += len(events)
                position = events[-1].position or position
        await documents.drop(collection)
        return {"events/s": count / watch.seconds}

    return run


def memory_raw_read(backend: Backend, batch: int) -> Contender:
    async def run() -> Metrics:
        position = count = 0
        with Stopwatch() as watch:
            for _ in range(1_000_000):  # bounded
                events = await backend.store.read_all(position, batch)
                if not events:
                    break
                count += len(events)
                position = events[-1].position or position
        return {"events/s": count / watch.seconds}

    return run
