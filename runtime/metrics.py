"""Prometheus metrics: one registry per app, so tests can build many apps in one process.

The other packages never import this module. Their work is measured from the
outside by wrappers that live in ``runtime/`` (``runtime/instrument.py``):
an event-store proxy (append latency, conflicts), an application-service
proxy (commands by type and outcome), an ASGI middleware (WebSocket
connections and subscriptions) and a strawberry extension (GraphQL
operations). Gauges that describe background work (sequencer lag, consumer
positions) are refreshed by ``/metrics`` itself just before rendering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

log = logging.getLogger(__name__)
# The *_created series double the output and tell an operator nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    """Every metric the service exports, registered on ``registry``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.commands = Counter(
            "ledger_commands", "Commands handled, by command type and outcome "
            "(ok, duplicate, rejected:<code>, conflict, error).",
            ["type", "outcome"], registry=r,
        )  # fmt: skip
        self.append_conflicts = Counter(
            "ledger_append_conflicts",
            "Appends refused because the stream moved (each one is retried or reported).",
            ["stream_type"],
            registry=r,
        )
        self.command_retries = Counter(
            "ledger_command_retries",
            "Commands decided again after an internal concurrency conflict.",
            ["type"],
            registry=r,
        )
        self.append_seconds = Histogram(
            "ledger_append_seconds",
            "Latency of one event-store append (one commit).",
            ["stream_type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.head_position = Gauge(
            "ledger_head_position", "Highest stamped global position.", registry=r
        )
        self.sequencer_lag = Gauge(
            "ledger_sequencer_lag_commits",
            "Commits appended but not yet stamped with a global position.",
            registry=r,
        )
        self.sequencer_lag_seconds = Gauge(
            "ledger_sequencer_lag_seconds",
            "Age of the oldest commit not yet stamped with a global position.",
            registry=r,
        )
        self.consumer_position = Gauge(
            "ledger_consumer_position", "Checkpoint of each consumer.", ["consumer"], registry=r
        )
        self.consumer_lag = Gauge(
            "ledger_consumer_lag_events",
            "Events between the head position and each consumer's checkpoint.",
            ["consumer"],
            registry=r,
        )
        self.consumer_running = Gauge(
            "ledger_consumer_running",
            "1 when the consumer runs (here or, by lease, elsewhere), 0 when stopped.",
            ["consumer"],
            registry=r,
        )
        self.websocket_connections = Gauge(
            "ledger_websocket_connections", "Open WebSocket connections.", registry=r
        )
        self.subscriptions = Gauge(
            "ledger_subscriptions", "Active GraphQL subscriptions (all connections).", registry=r
        )
        self.graphql_operations = Counter(
            "ledger_graphql_operations",
            "GraphQL operations by operation type, name and outcome (ok, error).",
            ["type", "name", "outcome"],
            registry=r,
        )
        self.graphql_seconds = Histogram(
            "ledger_graphql_seconds",
            "GraphQL operation latency (queries and mutations; subscriptions until set-up).",
            ["type", "name"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "ledger_http_requests",
            "HTTP requests by path group and status class.",
            ["path", "status"],
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


Refresher = Callable[[Metrics], Awaitable[None]]


def metrics_route(metrics: Metrics, refreshers: list[Refresher]) -> Route:
    """``GET /metrics``: refresh the background-work gauges, then render everything.

    A refresher that fails is logged and skipped: a scrape never fails because
    one source (say, the database) is briefly away.
    """

    async def endpoint(request: Request) -> Response:
        for refresh in refreshers:
            try:
                await asyncio.wait_for(refresh(metrics), 2.0)
            except Exception:
                log.warning("metrics refresher %s failed", refresh, exc_info=True)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return Route("/metrics", endpoint, methods=["GET"])
