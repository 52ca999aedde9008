"""Metric refreshers: read the state of background work just before ``/metrics`` renders.

Each returns a ``Refresher`` (``runtime.metrics``) bound to its source. They
only read (head position, checkpoints, leases): a scrape never changes state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from projections.projector import AttentionCounter
from runtime.metrics import Metrics, Refresher
from schema.oidc import JwksKeys
from store.protocol import EventStore


def head_refresher(store: EventStore) -> Refresher:
    """The highest stamped global position."""

    async def refresh(metrics: Metrics) -> None:
        metrics.head_position.set(await store.head_position())

    return refresh


def sequencer_refresher(events: EventStore, cap: int = 10_000) -> Refresher:
    """Commits not yet stamped, and the age of the oldest, from the event store.

    The count is capped at ``cap`` so a huge backlog cannot make a scrape slow.
    """

    async def refresh(metrics: Metrics) -> None:
        pending, oldest = await events.sequencing_backlog(cap)
        metrics.sequencer_lag.set(pending)
        age = max(time.time() - oldest / 1000, 0.0) if oldest is not None else 0.0
        metrics.sequencer_lag_seconds.set(age)

    return refresh


def parked_refresher(counters: Mapping[str, AttentionCounter], cap: int = 10_000) -> Refresher:
    """What consumers parked for an operator (the transfer manager's NEEDS_ATTENTION
    transfers), from their attention counters (``ReadSides.attention``), up to ``cap``."""

    async def refresh(metrics: Metrics) -> None:
        parked = [await count(cap) for count in counters.values()]
        metrics.transfers_parked.set(min(sum(parked), cap))

    return refresh


def consumer_refresher(status: Any) -> Refresher:
    """Per-consumer checkpoint, lag and running state from a ``StatusReporter``."""

    async def refresh(metrics: Metrics) -> None:
        for row in await status.report():
            metrics.consumer_position.labels(row.name).set(row.checkpoint)
            metrics.consumer_lag.labels(row.name).set(row.lag_events)
            running = 1 if row.state in ("running", "rebuilding") else 0
            metrics.consumer_running.labels(row.name).set(running)

    return refresh


def jwks_refresher(keys: JwksKeys) -> Refresher:
    """The OIDC key set: keys cached, provider up, age, fetches and refused unknown ``kid``s.

    The key set counts since start; the counters are advanced by the difference
    since the previous scrape.
    """
    seen = {"ok": 0, "error": 0, "refused": 0}

    async def refresh(metrics: Metrics) -> None:
        status = keys.status()
        metrics.jwks_keys.set(status.keys)
        fetched = status.age_seconds is not None
        metrics.jwks_provider_up.set(1 if fetched and status.last_error is None else 0)
        metrics.jwks_age_seconds.set(-1.0 if status.age_seconds is None else status.age_seconds)
        for outcome, total in (("ok", status.fetches_ok), ("error", status.fetches_failed)):
            metrics.jwks_fetches.labels(outcome).inc(total - seen[outcome])
            seen[outcome] = total
        metrics.jwks_unknown_kid_refused.inc(status.unknown_kid_refused - seen["refused"])
        seen["refused"] = status.unknown_kid_refused

    return refresh
