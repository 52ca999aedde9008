"""Prometheus metrics: one registry per app, so tests can build many apps in one process.

The other packages never import this module. Their work is measured by
what lives in ``runtime/``: the observer the event store and the Application
Service are built with (``runtime/instrument.py``: append latency, conflicts,
commands by type and outcome), an ASGI middleware (WebSocket
connections and subscriptions) and a strawberry extension (GraphQL
operations). Gauges that describe background work (sequencer lag, consumer
positions) are refreshed by ``/metrics`` itself just before rendering.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from graphql import FieldNode, get_operation_ast
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

from schema._engine.extensions import core_schema

log = logging.getLogger(__name__)
# The *_created series double the output and tell an operator nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]

M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """``metric.labels(*values)``, remembered by label values, for per-request paths.

    prometheus_client's ``labels`` converts and checks the values and takes a
    lock on every call; a request asks for the same few
    children again and again. The metric keeps every child it ever made, so
    this holds nothing more. Not for metrics whose children are ever removed.
    """

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    """Every metric the service exports, registered on ``registry``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        self._write_side()
        self._background_work()
        self._api()
        self._auth()

    def _write_side(self) -> None:
        """Commands, appends and the retries they cause."""
        self.commands = self._counter(
            "ledger_commands", "Commands handled, by command type and outcome "
            "(ok, duplicate, rejected, conflict, error).", "type", "outcome",
        )  # fmt: skip
        self.append_conflicts = self._counter(
            "ledger_append_conflicts",
            "Appends refused because the stream moved (each one is retried or reported).",
            "stream_type",
        )
        self.command_retries = self._counter(
            "ledger_command_retries",
            "Commands decided again after an internal concurrency conflict.",
            "type",
        )
        self.append_seconds = self._histogram(
            "ledger_append_seconds", "Latency of one event-store append (one commit).",
            "stream_type",
        )  # fmt: skip

    def _background_work(self) -> None:
        """The sequencer and the consumers (refreshed when ``/metrics`` renders)."""
        self.head_position = self._gauge("ledger_head_position", "Highest stamped global position.")
        self.sequencer_lag = self._gauge(
            "ledger_sequencer_lag_commits",
            "Commits appended but not yet stamped with a global position.",
        )
        self.sequencer_lag_seconds = self._gauge(
            "ledger_sequencer_lag_seconds",
            "Age of the oldest commit not yet stamped with a global position.",
        )
        self.consumer_position = self._gauge(
            "ledger_consumer_position", "Checkpoint of each consumer.", "consumer"
        )
        self.consumer_lag = self._gauge(
            "ledger_consumer_lag_events",
            "Events between the head position and each consumer's checkpoint.",
            "consumer",
        )
        self.consumer_running = self._gauge(
            "ledger_consumer_running",
            "1 when the consumer runs (here or, by lease, elsewhere), 0 when stopped.",
            "consumer",
        )
        self.transfers_parked = self._gauge(
            "ledger_transfers_parked",
            "Transfers waiting for an operator (NEEDS_ATTENTION: a step failed permanently), "
            "counted up to 10,000.",
        )

    def _api(self) -> None:
        """WebSockets, GraphQL operations and HTTP requests."""
        self.websocket_connections = self._gauge(
            "ledger_websocket_connections", "Open WebSocket connections."
        )
        self.subscriptions = self._gauge(
            "ledger_subscriptions", "Active GraphQL subscriptions (all connections)."
        )
        self.graphql_operations = self._counter(
            "ledger_graphql_operations",
            "GraphQL operations by operation type, name (a known operation name, the root "
            "field, or other) and outcome (ok, error).",
            "type", "name", "outcome",
        )  # fmt: skip
        self.graphql_seconds = self._histogram(
            "ledger_graphql_seconds",
            "GraphQL operation latency (queries and mutations; subscriptions until set-up).",
            "type", "name",
        )  # fmt: skip
        self.http_requests = self._counter(
            "ledger_http_requests", "HTTP requests by path group and status class.",
            "path", "status",
        )  # fmt: skip

    def _auth(self) -> None:
        """The OIDC provider's key set (refreshed when ``/metrics`` renders)."""
        self.jwks_keys = self._gauge("ledger_jwks_keys", "OIDC provider signing keys cached.")
        self.jwks_provider_up = self._gauge(
            "ledger_jwks_provider_up", "1 when the latest key-set fetch succeeded, else 0."
        )
        self.jwks_age_seconds = self._gauge(
            "ledger_jwks_age_seconds", "Age of the cached key set (-1: none fetched yet)."
        )
        self.jwks_fetches = self._counter(
            "ledger_jwks_fetches", "Key-set fetches from the OIDC provider by outcome (ok, error).",
            "outcome",
        )  # fmt: skip
        self.jwks_unknown_kid_refused = self._counter(
            "ledger_jwks_unknown_kid_refused",
            "Tokens refused unverified: unknown key id while a refetch was not allowed yet.",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _histogram(self, name: str, documentation: str, *labels: str) -> Histogram:
        return Histogram(
            name, documentation, labels, buckets=_LATENCY_BUCKETS, registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


OTHER_OPERATION = "other"


def operation_label(context: Any, known: frozenset[str]) -> str:
    """The ``name`` label of a GraphQL operation, from a set the schema and settings bound.

    The operation name a client sends is free text: labelling by it lets any
    caller create series without end. The label is the operation's name only
    when it is in ``known`` (``METRICS_OPERATION_NAMES``); else the name of the
    operation's first root field when the schema has such a field (``deposit``,
    ``accounts``...); else ``other``.
    """
    name = context.operation_name
    if name in known:
        return str(name)
    document = context.graphql_document
    if document is None:
        return OTHER_OPERATION
    try:
        operation = get_operation_ast(document, context.provided_operation_name)
        if operation is None or not operation.selection_set.selections:
            return OTHER_OPERATION
        first = operation.selection_set.selections[0]
        root = core_schema(context.schema).get_root_type(operation.operation)
    except Exception:  # a document that never validated can be anything
        return OTHER_OPERATION
    if isinstance(first, FieldNode) and root is not None and first.name.value in root.fields:
        return first.name.value
    return OTHER_OPERATION


def bearer_matches(request: Request, token: str) -> bool:
    """The request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


Refresher = Callable[[Metrics], Awaitable[None]]


def metrics_route(metrics: Metrics, refreshers: list[Refresher], token: str | None = None) -> Route:
    """``GET /metrics``: refresh the background-work gauges, then render everything.

    A refresher that fails is logged and skipped: a scrape never fails because
    one source (say, the database) is briefly away. With a ``token``
    (``METRICS_TOKEN``) a scrape without ``Authorization: Bearer <token>``
    gets 401 and costs nothing.
    """

    async def endpoint(request: Request) -> Response:
        if token is not None and not bearer_matches(request, token):
            return Response(
                "metrics need a bearer token", 401, headers={"www-authenticate": "Bearer"}
            )
        for refresh in refreshers:
            try:
                await asyncio.wait_for(refresh(metrics), 2.0)
            except Exception:
                log.warning("metrics refresher %s failed", refresh, exc_info=True)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return Route("/metrics", endpoint, methods=["GET"])
