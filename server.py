"""The one place that wires concrete classes together, and the service's entry point.

``python server.py`` (also ``make run`` and ``ledger serve``) reads the settings
and runs uvicorn (``runtime/serving.py``). ``create_app(settings)`` builds the Starlette app
(``runtime/asgi.py``); its lifespan (``runtime/lifecycle.py``) calls ``start_components``,
which starts, in this order (each step registers its own stop, so shutdown runs in the
reverse order):

1. the database: ``MONGODB_URL``, or the embedded nx-27017 under ``DATA_DIR``
   (started first, so it is stopped LAST, after everything that uses it);
2. the PyMongo async client and the stores (events, snapshots, command log,
   leases, read-model documents; in-memory ones with ``STORE=memory``);
3. the Application Service, observed for metrics, log context and traces;
4. the sequencer and the consumers (projectors, the transfer process manager);
5. the hub's feed tail and the live read models;
6. the GraphQL app at ``/graphql`` (HTTP, GraphiQL, both WebSocket protocols).

``/healthz``, ``/readyz`` and ``/metrics`` sit beside it; every started piece registers
its readiness check and metric refresher on the ``Monitoring`` it is given. On SIGTERM uvicorn
stops accepting, closes open WebSockets (close code 1012, "service restart"),
waits for requests in flight, then the lifespan unwinds the steps above.
The CLI (``runtime/cli.py``) reuses ``start_components`` without the API.
"""

from __future__ import annotations

import functools
import os
from contextlib import AsyncExitStack
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from starlette.applications import Starlette

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from projections.catalog import CONSUMERS, consumer_group, projector_factories, standard_handlers
from projections.checkpoints import CheckpointStore
from projections.consumer import ConsumerGroup, ConsumerSettings, new_owner_id
from projections.documents_memory import InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.hub import Hub
from projections.live import create_live
from projections.progress import ProgressBoard
from projections.readmodels import AccountsView, LedgerView, StatementView, TransfersView
from projections.rebuild import Rebuilder
from projections.status import StatusReporter
from projections.transfer_manager import retry_parked
from projections.waiting import ReadYourWrites
from runtime import graphiql, serving, tracing
from runtime.api_settings import auth_from, limits_from, persisted_from
from runtime.asgi import LateApp, service_app
from runtime.components import Components, Monitoring, Stores
from runtime.database import DatabaseHandle, DatabaseUnreachable, check_reachable
from runtime.health import Health, consumer_check, jwks_check, sequencer_check
from runtime.instrument import Instruments, operation_metrics
from runtime.lifecycle import (
    enter_background_task,
    enter_database,
    enter_mongo_client,
    serving_lifespan,
    stop_embedded_database,
)
from runtime.metrics import Metrics
from runtime.operations import ProjectionRetrier
from runtime.probes import (
    consumer_refresher,
    head_refresher,
    jwks_refresher,
    parked_transfers_refresher,
    sequencer_refresher,
)
from runtime.settings import Settings, SettingsError, load_settings
from schema.app import ExtensionFactory, build_schema, make_graphql_app
from schema.auth import AuthSettings
from schema.context import Context
from schema.persisted import persisted_extensions
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from store.mongo_commands import MongoCommandLog
from store.mongo_events import MongoEventStore
from store.mongo_leases import MongoLeases
from store.mongo_snapshots import MongoSnapshotStore
from store.protocol import UNOBSERVED, StoreObserver
from store.records import set_clock_skew
from store.sequencer import Sequencer

__all__ = ["Components", "Monitoring", "Stores", "create_app", "main", "serve", "start_components"]


# -- storage -------------------------------------------------------------------------


async def mongo_stores(
    database: AsyncDatabase[dict[str, Any]], observer: StoreObserver = UNOBSERVED
) -> Stores:
    events = MongoEventStore(database, observer=observer)
    snapshots = MongoSnapshotStore(database)
    commands, leases = MongoCommandLog(database), MongoLeases(database)
    for store in (events, snapshots, commands, leases):
        await store.ensure_indexes()
    return Stores(events, snapshots, commands, leases, MongoDocumentStore(database))


def memory_stores(observer: StoreObserver = UNOBSERVED) -> Stores:
    events = InMemoryEventStore(observer=observer)
    return Stores(
        events,
        InMemorySnapshotStore(),
        InMemoryCommandLog(events),
        InMemoryLeases(),
        InMemoryDocumentStore(),
    )


async def open_stores(
    settings: Settings, stack: AsyncExitStack, health: Health, observer: StoreObserver = UNOBSERVED
) -> tuple[DatabaseHandle | None, Stores]:
    if settings.store == "memory":
        return None, memory_stores(observer)
    handle = await enter_database(settings, stack)
    timeout = settings.mongodb_connect_timeout_seconds
    client = await enter_mongo_client(handle.url, stack, health, timeout)
    return handle, await mongo_stores(client[settings.mongodb_database], observer)


# -- write side, consumers, live -----------------------------------------------------


def consumers(settings: Settings, parts: Components, owner: str) -> ConsumerGroup:
    handlers = standard_handlers(
        parts.stores.documents, parts.events, sender=parts.service, hub=parts.hub, registry=EVENTS
    )
    handlers = tracing.traced_handlers(handlers)  # unchanged while tracing is off
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


async def start_sequencer(parts: Components, stack: AsyncExitStack, monitoring: Monitoring) -> None:
    """The sequencer, for a store that needs one (the in-memory store stamps positions itself)."""
    store = parts.stores.events
    if not store.needs_sequencer:
        return
    settings = parts.settings
    sequencer = Sequencer(store, parts.stores.leases, lease_ttl=settings.lease_ttl_seconds)
    # stop() lets it finish its pass, then it releases the lease
    task = enter_background_task(
        stack, "sequencer", sequencer.run, sequencer.stop, settings.shutdown_timeout_seconds
    )
    check = sequencer_check(task, parts.stores.leases, sequencer.lease_name)
    monitoring.health.add("sequencer", check)
    monitoring.refreshers.append(sequencer_refresher(store))
    parts.extras["sequencer"] = sequencer


async def start_consumers(parts: Components, stack: AsyncExitStack, monitoring: Monitoring) -> None:
    """The consumers (each a cluster-wide singleton by lease) in this process."""
    group = consumers(parts.settings, parts, new_owner_id())
    group.start()
    stack.push_async_callback(group.stop)
    parts.consumers = group
    for name in group.names:
        check = consumer_check(group[name], parts.stores.leases)
        monitoring.health.add(f"consumer:{name}", check)
    monitoring.refreshers.append(consumer_refresher(parts.status))
    monitoring.refreshers.append(parked_transfers_refresher(TransfersView(parts.stores.documents)))


async def start_live(parts: Components, stack: AsyncExitStack) -> None:
    live = create_live(
        parts.events,
        parts.stores.documents,
        parts.checkpoints,
        hub=parts.hub,
        progress=parts.progress,
        poll_interval=min(parts.settings.poll_interval_seconds, 0.1),
    )
    tracing.watch_pushes(live.feed, parts.hub)
    await live.start()
    stack.push_async_callback(live.stop)
    parts.live = live


# -- GraphQL -------------------------------------------------------------------------


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
        retrier=parts.retrier,
        hub=parts.hub,
        live=parts.live,
        auth=auth_from(settings),
        limits=limits_from(settings),
    )
    # The metrics extension runs outermost: it times and classifies every operation.
    names = [n.strip() for n in settings.metrics_operation_names.split(",") if n.strip()]
    persisted = persisted_from(settings)
    extensions: list[ExtensionFactory] = [
        operation_metrics(metrics, names),
        *([tracing.OperationSpans] if tracing.enabled() else []),
        *persisted_extensions(persisted),
    ]
    schema = build_schema(context.limits, extensions=extensions)
    app = make_graphql_app(context, schema, allowed_origins=settings.effective_cors_origins)
    if settings.graphiql_enabled:
        app.graphiql_html = graphiql.page_for(settings.graphiql_assets_dir)
    app.persisted_queries = persisted
    return app


def watch_key_set(auth: AuthSettings, monitoring: Monitoring) -> None:
    """An OIDC provider's key set in ``/readyz`` (whose check fetches it first) and metrics."""
    if auth.oidc is not None:
        monitoring.health.add("jwks", jwks_check(auth.oidc.keys))
        monitoring.refreshers.append(jwks_refresher(auth.oidc.keys))


# -- the whole service ---------------------------------------------------------------


async def core_components(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics, health: Health
) -> Components:
    """The stores, the (observed) Application Service and what reads the stores."""
    set_clock_skew(settings.clock_skew_seconds)  # 0 outside tests of disagreeing clocks
    if not tracing.enabled() and tracing.configure():  # OTEL_* (runtime/tracing.py)
        stack.callback(tracing.shutdown)
    instruments = Instruments(metrics)
    database, stores = await open_stores(settings, stack, health, instruments)
    events = stores.events
    service = ApplicationService(
        events,
        stores.snapshots,
        stores.command_log,
        EVENTS,
        tracing.traced_deciders(DECIDERS),
        snapshot_every=settings.snapshot_every,
        observer=instruments,
    )
    stack.push_async_callback(service.close)
    checkpoints = CheckpointStore(stores.documents)
    return Components(
        settings, database, stores, events, service, checkpoints,
        ProgressBoard(), Hub(),
        StatusReporter(events, checkpoints, stores.leases, CONSUMERS, attention={
            "transfer_manager": TransfersView(stores.documents).count_parked,
        }),
        Rebuilder(events, stores.documents, checkpoints, stores.leases,
                  projector_factories(stores.documents, events, registry=EVENTS),
                  lease_ttl=settings.lease_ttl_seconds),
        ProjectionRetrier(checkpoints, CONSUMERS, followups={
            # Retrying the transfer manager re-decides the steps of parked transfers.
            "transfer_manager": functools.partial(
                retry_parked, service, TransfersView(stores.documents)
            ),
        }),
    )  # fmt: skip


async def start_components(
    settings: Settings,
    stack: AsyncExitStack,
    monitoring: Monitoring,
    *,
    workers: bool = True,
    api: bool = True,
    sequencer: bool | None = None,
) -> Components:
    """Start the service's pieces on ``stack`` (which stops them in reverse order).

    ``workers``: the sequencer and the consumers; ``sequencer`` alone (default:
    as ``workers``), e.g. for ``ledger events tail``; ``api``: live feed and GraphQL.
    """
    parts = await core_components(settings, stack, monitoring.metrics, monitoring.health)
    monitoring.refreshers.append(head_refresher(parts.events))
    if workers if sequencer is None else sequencer:
        await start_sequencer(parts, stack, monitoring)
    if workers:
        await start_consumers(parts, stack, monitoring)
    if api:
        await start_live(parts, stack)
        parts.graphql = graphql_app(parts, monitoring.metrics)
        watch_key_set(parts.graphql.base.auth, monitoring)
    return parts


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole service as an ASGI app; nothing starts until its lifespan runs."""
    settings = settings or load_settings()
    monitoring, graphql = Monitoring(), LateApp()
    lifespan = serving_lifespan(settings, monitoring, graphql, start_components)
    return service_app(settings, monitoring, graphql, lifespan)


def serve(settings: Settings) -> None:
    """Run the service under uvicorn in the foreground until SIGINT/SIGTERM.

    An unreachable ``MONGODB_URL`` ends it before serving: one line, exit status 1.
    """
    try:
        check_reachable(settings)
    except DatabaseUnreachable as error:
        raise SystemExit(f"ledger: {error}") from None
    serving.run(create_app, settings, on_exit=stop_embedded_database)


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
