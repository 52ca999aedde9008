"""The one place that wires concrete classes together, and the service's entry point.

``python server.py`` (also ``make run`` and ``ledger serve``) reads the settings
and runs uvicorn (``runtime/serving.py``). ``create_app(settings)`` builds the Starlette app; its
lifespan calls ``start_components``, which starts, in this order (each step
registers its own stop, so shutdown runs in the reverse order):

1. the database: ``MONGODB_URL``, or the embedded nx-27017 under ``DATA_DIR``
   (started first, so it is stopped LAST, after everything that uses it);
2. the PyMongo async client and the stores (events, snapshots, command log,
   leases, read-model documents; in-memory ones with ``STORE=memory``);
3. the Application Service, wrapped for metrics and log context;
4. the sequencer and the consumers (projectors, the transfer process manager);
5. the hub's feed tail and the live read models;
6. the GraphQL app at ``/graphql`` (HTTP, GraphiQL, both WebSocket protocols).

``/healthz``, ``/readyz`` and ``/metrics`` sit beside it. On SIGTERM uvicorn
stops accepting, closes open WebSockets (close code 1012, "service restart"),
waits for requests in flight, then the lifespan unwinds the steps above.
The CLI (``runtime/cli.py``) reuses ``start_components`` without the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from projections.catalog import CONSUMERS, consumer_group, projector_factories, standard_handlers
from projections.checkpoints import CheckpointStore
from projections.consumer import ConsumerGroup, ConsumerSettings, new_owner_id
from projections.documents import DocumentStore
from projections.documents_memory import InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.hub import Hub
from projections.live import Live, create_live
from projections.progress import ProgressBoard
from projections.readmodels import AccountsView, LedgerView, StatementView, TransfersView
from projections.rebuild import Rebuilder
from projections.status import StatusReporter
from projections.waiting import ReadYourWrites
from runtime import serving
from runtime.asgi import LateApp
from runtime.database import DatabaseHandle, open_database
from runtime.health import Health, consumer_check, health_routes, ping_check, sequencer_check
from runtime.instrument import InstrumentedEventStore, InstrumentedService, operation_metrics
from runtime.metrics import Metrics, Refresher, metrics_route
from runtime.middleware import RuntimeMiddleware
from runtime.probes import consumer_refresher, head_refresher, sequencer_refresher
from runtime.settings import Settings, SettingsError, load_settings
from schema.app import build_schema, make_graphql_app
from schema.auth import AuthSettings
from schema.context import Context
from schema.limits import Limits
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from store.mongo_commands import MongoCommandLog
from store.mongo_commits import PENDING
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import CommandLog, EventStore, Leases, SnapshotStore
from store.sequencer import Sequencer

log = logging.getLogger("server")


@dataclass
class Stores:
    events: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog
    leases: Leases
    documents: DocumentStore


@dataclass
class Components:
    """Everything ``start_components`` started; tests and the CLI reach in here."""

    settings: Settings
    database: DatabaseHandle | None
    stores: Stores
    events: InstrumentedEventStore
    service: InstrumentedService
    checkpoints: CheckpointStore
    progress: ProgressBoard
    hub: Hub
    status: StatusReporter
    rebuilder: Rebuilder
    consumers: ConsumerGroup | None = None
    live: Live | None = None
    graphql: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


# -- storage -------------------------------------------------------------------------


async def open_db(settings: Settings, stack: AsyncExitStack) -> DatabaseHandle:
    handle = await asyncio.to_thread(open_database, settings)
    # The first callback on the stack runs last: the embedded database stops last.
    stack.push_async_callback(asyncio.to_thread, handle.close)
    return handle


async def open_client(
    url: str, stack: AsyncExitStack, health: Health
) -> AsyncMongoClient[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=10_000, tz_aware=True, appname="ledger"
    )
    stack.push_async_callback(client.close)
    await client.admin.command("ping")
    health.add("database", ping_check(lambda: client.admin.command("ping")))
    return client


async def mongo_stores(database: AsyncDatabase[dict[str, Any]]) -> Stores:
    events, snapshots = MongoEventStore(database), MongoSnapshotStore(database)
    commands, leases = MongoCommandLog(database), MongoLeases(database)
    for store in (events, snapshots, commands, leases):
        await store.ensure_indexes()
    return Stores(events, snapshots, commands, leases, MongoDocumentStore(database))


def memory_stores() -> Stores:
    return Stores(
        InMemoryEventStore(),
        InMemorySnapshotStore(),
        InMemoryCommandLog(),
        InMemoryLeases(),
        InMemoryDocumentStore(),
    )


async def open_stores(
    settings: Settings, stack: AsyncExitStack, health: Health
) -> tuple[DatabaseHandle | None, Stores]:
    if settings.store == "memory":
        return None, memory_stores()
    handle = await open_db(settings, stack)
    client = await open_client(handle.url, stack, health)
    return handle, await mongo_stores(client[settings.mongodb_database])


# -- write side, consumers, live -----------------------------------------------------


def application_service(
    settings: Settings, stores: Stores, events: EventStore, metrics: Metrics
) -> tuple[ApplicationService, InstrumentedService]:
    service = ApplicationService(
        events,
        stores.snapshots,
        stores.command_log,
        EVENTS,
        DECIDERS,
        snapshot_every=settings.snapshot_every,
    )
    return service, InstrumentedService(service, metrics)


def consumers(settings: Settings, parts: Components, owner: str) -> ConsumerGroup:
    handlers = standard_handlers(
        parts.stores.documents, parts.events, sender=parts.service, hub=parts.hub, registry=EVENTS
    )
    consumer_settings = ConsumerSettings(
        poll_interval=settings.poll_interval_seconds, lease_ttl=settings.lease_ttl_seconds
    )
    return consumer_group(
        handlers,
        parts.events,
        parts.checkpoints,
        parts.stores.leases,
        settings=consumer_settings,
        progress=parts.progress,
        owner=owner,
    )


async def start_sequencer(
    parts: Components, stack: AsyncExitStack, health: Health, refreshers: list[Refresher]
) -> None:
    """The Mongo store's sequencer (the in-memory store stamps positions itself)."""
    store = parts.stores.events
    if not isinstance(store, MongoEventStore):
        return
    settings = parts.settings
    sequencer = Sequencer(store, parts.stores.leases, lease_ttl=settings.lease_ttl_seconds)
    task = asyncio.get_running_loop().create_task(sequencer.run(), name="sequencer")

    async def stop() -> None:
        sequencer.stop()  # finishes its pass, then releases the lease
        done, _ = await asyncio.wait({task}, timeout=settings.shutdown_timeout_seconds)
        if not done:
            log.warning("the sequencer did not stop in time; cancelling it")
            task.cancel()

    stack.push_async_callback(stop)
    health.add("sequencer", sequencer_check(task, parts.stores.leases, sequencer.lease_name))
    refreshers.append(sequencer_refresher(store.collection, PENDING))
    parts.extras["sequencer"] = sequencer


async def start_consumers(
    parts: Components, stack: AsyncExitStack, health: Health, refreshers: list[Refresher]
) -> None:
    """The consumers (each a cluster-wide singleton by lease) in this process."""
    group = consumers(parts.settings, parts, new_owner_id())
    group.start()
    stack.push_async_callback(group.stop)
    parts.consumers = group
    for name in group.names:
        health.add(f"consumer:{name}", consumer_check(group[name], parts.stores.leases))
    refreshers.append(consumer_refresher(parts.status))


async def start_live(parts: Components, stack: AsyncExitStack) -> None:
    live = create_live(
        parts.events,
        parts.stores.documents,
        parts.checkpoints,
        hub=parts.hub,
        progress=parts.progress,
        poll_interval=min(parts.settings.poll_interval_seconds, 0.1),
    )
    await live.start()
    stack.push_async_callback(live.stop)
    parts.live = live


# -- GraphQL -------------------------------------------------------------------------


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_query_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_page_size=settings.max_page_size,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        connection_init_timeout_seconds=settings.connection_init_timeout_seconds,
        max_body_bytes=settings.max_body_bytes,
        consistency_timeout_seconds=settings.consistency_timeout_seconds,
        introspection=settings.introspection_enabled,
        graphiql=settings.graphiql_enabled,
    )


def graphql_app(parts: Components, metrics: Metrics) -> Any:
    settings, documents = parts.settings, parts.stores.documents
    page = settings.max_page_size
    context = Context(
        service=parts.service,
        events=parts.events,
        accounts=AccountsView(documents, max_page_size=page),
        statements=StatementView(documents, max_page_size=page),
        transfers=TransfersView(documents, max_page_size=page),
        ledger=LedgerView(documents),
        waiting=ReadYourWrites(documents, parts.checkpoints, progress=parts.progress),
        status=parts.status,
        hub=parts.hub,
        live=parts.live,
        auth=AuthSettings(mode=settings.auth_mode, jwt_secret=settings.jwt_secret_value()),
        limits=limits_from(settings),
    )
    # The metrics extension runs outermost: it times and classifies every operation.
    schema = build_schema(context.limits, extensions=[operation_metrics(metrics)])
    return make_graphql_app(context, schema)


# -- the whole service ---------------------------------------------------------------


async def start_components(
    settings: Settings,
    stack: AsyncExitStack,
    metrics: Metrics,
    health: Health,
    refreshers: list[Refresher],
    *,
    workers: bool = True,
    api: bool = True,
    sequencer: bool | None = None,
) -> Components:
    """Start the service's pieces on ``stack`` (which stops them in reverse order).

    ``workers``: the sequencer and the consumers; ``sequencer`` alone (default:
    as ``workers``), e.g. for ``ledger events tail``; ``api``: live feed and GraphQL.
    """
    database, stores = await open_stores(settings, stack, health)
    events = InstrumentedEventStore(stores.events, metrics)
    service, instrumented = application_service(settings, stores, events, metrics)
    stack.push_async_callback(service.close)
    checkpoints = CheckpointStore(stores.documents)
    parts = Components(
        settings, database, stores, events, instrumented, checkpoints, ProgressBoard(), Hub(),
        StatusReporter(events, checkpoints, stores.leases, CONSUMERS),
        Rebuilder(events, stores.documents, checkpoints, stores.leases,
                  projector_factories(stores.documents, events, registry=EVENTS),
                  lease_ttl=settings.lease_ttl_seconds),
    )  # fmt: skip
    refreshers.append(head_refresher(events))
    if workers if sequencer is None else sequencer:
        await start_sequencer(parts, stack, health, refreshers)
    if workers:
        await start_consumers(parts, stack, health, refreshers)
    if api:
        await start_live(parts, stack)
        parts.graphql = graphql_app(parts, metrics)
    return parts


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
    """Run the service under uvicorn in the foreground until SIGINT/SIGTERM."""
    serving.run(create_app, settings, on_exit=_stop_embedded_database)


def _stop_embedded_database(app: Any) -> None:
    """Normally the lifespan has stopped it; after a forced exit (a second Ctrl-C) it has not."""
    components: Components | None = getattr(app.state, "components", None)
    if components is not None and components.database is not None:
        components.database.close()


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
