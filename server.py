"""The one place that wires concrete classes together, and the service's entry point.

``python server.py`` (also ``make run`` and ``ledger serve``) reads the settings
and runs uvicorn. ``create_app(settings)`` builds the Starlette app; its
lifespan starts, in this order, and stops in the reverse order:

1. the database: ``MONGODB_URL``, or the embedded nx-27017 under ``DATA_DIR``
   (started first, so it is stopped LAST, after everything that uses it);
2. the PyMongo async client, then the stores (events, snapshots, command log,
   leases; the in-memory ones with ``STORE=memory``);
3. the Application Service (wrapped for metrics and log context);
4. the sequencer and the consumers (projectors, the transfer process manager);
5. the hub, the global-feed tail and the live read models;
6. the GraphQL app, served at ``/graphql`` (HTTP, GraphiQL and both WebSocket
   protocols).

``/healthz``, ``/readyz`` and ``/metrics`` sit beside it. On shutdown uvicorn
first stops accepting, closes open WebSockets (close code 1012, "service
restart") and waits for requests in flight; then the lifespan stops the pieces
above in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from runtime.asgi import LateApp
from runtime.database import DatabaseHandle, open_database
from runtime.health import Health, health_routes, ping_check
from runtime.instrument import InstrumentedEventStore, InstrumentedService
from runtime.logging import configure_logging
from runtime.metrics import Metrics, Refresher, metrics_route
from runtime.middleware import RuntimeMiddleware
from runtime.settings import Settings, SettingsError, load_settings
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from store.protocol import CommandLog, EventStore, Leases, SnapshotStore

log = logging.getLogger("server")


@dataclass
class Stores:
    events: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog
    leases: Leases


@dataclass
class Components:
    """Everything the lifespan started, for tests and the CLI to reach."""

    settings: Settings
    database: DatabaseHandle | None
    stores: Stores
    service: Any
    graphql: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


# -- start-up, one step per function -------------------------------------------------


async def open_db(settings: Settings, stack: AsyncExitStack) -> DatabaseHandle:
    handle = await asyncio.to_thread(open_database, settings)
    # First on the stack, so the embedded database is stopped last.
    stack.push_async_callback(asyncio.to_thread, handle.close)
    return handle


def memory_stores() -> Stores:
    return Stores(
        InMemoryEventStore(), InMemorySnapshotStore(), InMemoryCommandLog(), InMemoryLeases()
    )


async def mongo_client(
    url: str, stack: AsyncExitStack, health: Health
) -> AsyncMongoClient[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=5_000, tz_aware=True, appname="ledger"
    )
    stack.push_async_callback(client.close)
    await client.admin.command("ping")
    health.add("database", ping_check(lambda: client.admin.command("ping")))
    return client


async def start_components(
    settings: Settings,
    stack: AsyncExitStack,
    metrics: Metrics,
    health: Health,
    refreshers: list[Refresher],
) -> Components:
    database: DatabaseHandle | None = None
    if settings.store == "memory":
        stores = memory_stores()
    else:
        database = await open_db(settings, stack)
        client = await mongo_client(database.url, stack, health)
        stores = memory_stores()  # replaced by the Mongo stores once store/ provides them
        del client
    events = InstrumentedEventStore(stores.events, metrics)
    service = ApplicationService(
        events,
        stores.snapshots,
        stores.command_log,
        EVENTS,
        DECIDERS,
        snapshot_every=settings.snapshot_every,
    )
    stack.push_async_callback(service.close)
    return Components(settings, database, stores, InstrumentedService(service, metrics))


# -- the app -------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole service as an ASGI app; nothing starts until its lifespan runs."""
    settings = settings or load_settings()
    metrics, health, graphql = Metrics(), Health(), LateApp()
    refreshers: list[Refresher] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            components = await start_components(settings, stack, metrics, health, refreshers)
            app.state.components = components
            graphql.app = components.graphql
            health.phase = "serving"
            log.info("serving on http://%s:%s/graphql", settings.host, settings.port)
            try:
                yield
            finally:
                health.phase = "stopping"
                log.info("shutting down")
        log.info("stopped")

    routes = [
        *health_routes(health),
        metrics_route(metrics, refreshers),
        Route("/graphql", graphql),
        WebSocketRoute("/graphql", graphql),
    ]
    middleware = [
        Middleware(RuntimeMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings, app.state.metrics, app.state.health = settings, metrics, health
    return app


def serve(settings: Settings) -> None:
    """Run uvicorn in the foreground until SIGINT/SIGTERM; return after a clean stop."""
    configure_logging(settings.effective_log_level, settings.effective_log_format)
    log.info("starting with %s", settings.describe())
    if settings.auth_mode == "dev":
        log.warning("AUTH_MODE=dev: every request acts as the admin user 'dev'")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our handler, already installed, formats and redacts
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
        lifespan="on",
        ws_max_size=settings.max_body_bytes,
        server_header=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down cleanly;
    # turn that into a normal exit instead of a death by signal or a traceback.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve())
    if not server.started:
        raise SystemExit(3)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    """``python server.py``: serve with the settings from the environment."""
    try:
        settings = load_settings()
    except SettingsError as error:
        raise SystemExit(f"ledger: {error}") from None
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(settings)


if __name__ == "__main__":
    main()
