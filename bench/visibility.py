"""Append -> accounts read model visible: latency at a fixed command rate, one process.

The service, the sequencer (Mongo only: the in-memory store stamps positions
while appending) and the ``accounts`` consumer run in this process, as in
``server.py``. Deposits are sent on a fixed schedule over ``accounts``
accounts. A deposit counts as visible when the projector publishes its change
note (after writing the document) for that account at that version or later.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Metrics, percentile
from bench.workload import DEPOSIT_MINOR, EVENTS, Backend, open_accounts, service_on
from domain.accounts import Deposit
from projections.accounts import AccountsProjector
from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, ConsumerSettings
from projections.documents import DocumentStore
from projections.hub import Hub
from store.protocol import Leases
from store.sequencer import Sequencer

SERVER_CONSUMER = ConsumerSettings(poll_interval=0.2, lease_ttl=10.0)  # server.py defaults


@dataclass
class Sightings:
    """Per account: the versions the projector published and when (in order)."""

    versions: dict[str, list[int]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)

    def note(self, account_id: str, version: int, at: float) -> None:
        self.versions.setdefault(account_id, []).append(version)
        self.times.setdefault(account_id, []).append(at)

    def visible_at(self, account_id: str, version: int) -> float | None:
        """When the read model first reflected ``version`` (or a later one)."""
        versions = self.versions.get(account_id, [])
        index = bisect.bisect_left(versions, version)
        return self.times[account_id][index] if index < len(versions) else None


@contextlib.asynccontextmanager
async def read_side(
    backend: Backend, documents: DocumentStore, leases: Leases, hub: Hub
) -> AsyncIterator[Consumer]:
    """The accounts consumer (and the sequencer when the store needs one), running."""
    projector = AccountsProjector(documents, hub=hub, registry=EVENTS)
    consumer = Consumer(
        projector, backend.store, CheckpointStore(documents), leases, settings=SERVER_CONSUMER
    )
    sequencer: Sequencer | None = None
    task: asyncio.Task[None] | None = None
    if backend.store.needs_sequencer:
        sequencer = Sequencer(backend.store, leases)
        task = asyncio.create_task(sequencer.run())
    consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()
        if sequencer is not None and task is not None:
            sequencer.stop()
            await asyncio.wait_for(task, 10)


async def caught_up(consumer: Consumer, backend: Backend, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        head = await backend.store.head_position()
        if head and consumer.position >= head:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the accounts consumer did not catch up")


async def watch(hub: Hub, ids: list[str], sightings: Sightings) -> list[asyncio.Task[None]]:
    async def listen(account_id: str) -> None:
        async with hub.subscribe(
            f"account:{account_id}", latest_only=False, maxsize=100_000
        ) as sub:
            async for note in sub:
                sightings.note(account_id, int(note["version"]), time.perf_counter())

    return [asyncio.create_task(listen(account_id)) for account_id in ids]


async def measure_visibility(
    backend: Backend,
    documents: DocumentStore,
    leases: Leases,
    *,
    accounts: int,
    rate: float,
    seconds: float,
) -> Metrics:
    """One run: p50/p99/max ms from sending a deposit to its read-model write."""
    hub, sightings, sent = Hub(), Sightings(), list[tuple[str, int, float]]()
    service = service_on(backend)
    async with read_side(backend, documents, leases, hub) as consumer:
        ids = await open_accounts(service, accounts)
        await caught_up(consumer, backend, 30)
        listeners = await watch(hub, ids, sightings)

        async def deposit(account_id: str) -> None:
            started = time.perf_counter()
            outcome = await service.handle(Deposit(account_id, DEPOSIT_MINOR))
            sent.append((account_id, outcome.version, started))

        began = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for number in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, began + number / rate - time.perf_counter()))
                group.create_task(deposit(ids[number % len(ids)]))
        achieved = len(sent) / (time.perf_counter() - began)
        await settle(sightings, sent, 15)
        for listener in listeners:
            listener.cancel()
    await service.close()
    return summarise(sightings, sent, achieved)


async def settle(sightings: Sightings, sent: list[tuple[str, int, float]], seconds: float) -> None:
    """Wait, bounded, until every deposit sent is visible."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(sightings.visible_at(a, v) is not None for a, v, _ in sent):
            return
        await asyncio.sleep(0.05)


def summarise(sightings: Sightings, sent: list[tuple[str, int, float]], rate: float) -> Metrics:
    latencies: list[float] = []
    for account_id, version, started in sent:
        seen = sightings.visible_at(account_id, version)
        if seen is not None:
            latencies.append((seen - started) * 1000)
    values: Any = latencies or [float("nan")]
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "commands/s": rate,
        "visible share": len(latencies) / max(1, len(sent)),
    }
