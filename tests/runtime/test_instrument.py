"""The metrics observer of the store and the Application Service, on the in-memory store."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from application.service import ApplicationService, CommandContext
from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import AccountNotFound, Deposit, OpenAccount
from domain.aggregate import deciders, rejection_types
from domain.codec import build_registry
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from runtime.instrument import Instruments
from runtime.logging import configure_logging
from runtime.metrics import Metrics
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemorySnapshotStore,
)

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)
EVENTS = build_registry(BANK)

ACCOUNT = "acc-" + "a" * 32


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _services() -> tuple[Metrics, ApplicationService]:
    metrics, (service, _) = _two_processes()
    return metrics, service


def _two_processes() -> tuple[Metrics, tuple[ApplicationService, ApplicationService]]:
    """Two observed services on one observed store, as two processes on one database."""
    metrics = Metrics()
    instruments = Instruments(metrics)
    store = InMemoryEventStore(observer=instruments)
    log, snapshots = InMemoryCommandLog(store), InMemorySnapshotStore()
    first, second = (
        ApplicationService(
            store,
            snapshots,
            log,
            EVENTS,
            DECIDERS,
            cache_size=0,
            observer=instruments,
            rejection_types=rejection_types(BANK),
        )
        for _ in range(2)
    )
    return metrics, (first, second)


async def test_outcomes_conflicts_and_retries_are_counted() -> None:
    metrics, (service, other) = _two_processes()
    await service.handle(OpenAccount(ACCOUNT, "ana", "EUR"), CommandContext(command_id="c-1"))
    repeated = await service.handle(
        OpenAccount(ACCOUNT, "ana", "EUR"), CommandContext(command_id="c-1")
    )
    assert repeated.duplicate
    with pytest.raises(AccountNotFound):
        await service.handle(Deposit("acc-" + "b" * 32, 100), CommandContext())
    # Concurrent deposits on one stream from two processes collide; the loser decides again.
    await asyncio.gather(
        *((service, other)[i % 2].handle(Deposit(ACCOUNT, 100)) for i in range(10))
    )

    assert _value(metrics, "ledger_commands_total", type="OpenAccount", outcome="ok") == 1
    assert _value(metrics, "ledger_commands_total", type="OpenAccount", outcome="duplicate") == 1
    assert _value(metrics, "ledger_commands_total", type="Deposit", outcome="rejected") == 1
    assert _value(metrics, "ledger_commands_total", type="Deposit", outcome="ok") == 10
    conflicts = _value(metrics, "ledger_append_conflicts_total", stream_type="account")
    assert conflicts >= 1
    assert _value(metrics, "ledger_command_retries_total", type="Deposit") == conflicts
    appends = _value(metrics, "ledger_append_seconds_count", stream_type="account")
    assert appends == 1 + 10 + conflicts


async def test_command_and_correlation_ids_reach_the_log() -> None:
    _, service = _services()
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "json", stream)
    try:
        context = CommandContext(command_id="cmd-7", correlation_id="corr-7")
        await service.handle(OpenAccount(ACCOUNT, "ana", "EUR"), context)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    handled = [line for line in lines if line["message"].startswith("command OpenAccount ok")]
    assert handled, lines
    assert handled[0]["command_id"] == "cmd-7"
    assert handled[0]["correlation_id"] == "corr-7"
