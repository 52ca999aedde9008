"""The composition root: the one place that builds concrete classes and wires them together.

Production (``python server.py``, ``ledger serve``), the CLI (``runtime/cli.py``) and the
tests all start the service through this module. ``create_app(settings)`` builds the
Starlette app; its lifespan (``serving_lifespan``) calls ``start_components``, which starts,
in this order (each step registers its own stop, so shutdown runs in the reverse order):

1. the database: ``MONGODB_URL``, or the embedded nx-27017 under ``DATA_DIR``
   (started first, so it is stopped LAST, after everything that uses it);
2. the PyMongo async client and the stores (events, snapshots, command log,
   leases, read-model documents; in-memory ones with ``STORE=memory``);
3. the Application Service, observed for metrics, log context and traces;
4. the sequencer and the consumers (the features' projectors and process managers);
5. the hub's feed tail and the live read models;
6. the GraphQL app at ``/graphql`` (HTTP, GraphiQL, both WebSocket protocols).

What the service is made of (deciders, event registry, consumers, views, live topics,
schema) is derived from the features the ``FEATURES`` setting names (``runtime/features.py``).

``/healthz``, ``/readyz`` and ``/metrics`` sit beside it; every started piece registers
its readiness check and metric refresher on the ``Monitoring`` it is given. ``serve`` runs
the app under uvicorn in the foreground: on SIGTERM uvicorn stops accepting, closes open
WebSockets (close code 1012, "service restart"), waits for requests in flight, then the
lifespan unwinds the steps above, the whole stop bounded by ``SHUTDOWN_TIMEOUT_SECONDS``
(``BoundedStop``). The CLI reuses ``start_components`` without the API.

Routes are fixed when the Starlette app is created, but the GraphQL app needs the database,
stores and consumers that only exist after start-up: ``/graphql`` is a ``LateApp`` slot the
lifespan fills. uvicorn serves no request before the lifespan's start-up finishes, so in
practice the slot is always filled; until then it answers 503 (HTTP) or closes 1013
("try again later", WebSocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from application.service import ApplicationService
from projections.checkpoints import CheckpointStore, ProgressBoard, ReadYourWrites, StatusReporter
from projections.consumer import ConsumerGroup, ConsumerSettings, consumer_group, new_owner_id
from projections.documents import DocumentStore, InMemoryDocumentStore
from projections.documents_mongo import MongoDocumentStore
from projections.hub import Hub
from projections.live import Live, create_live
from projections.projector import ConsumerDeps
from projections.rebuild import Rebuilder
from runtime import graphiql, tracing
from runtime.cors import cors_middleware
from runtime.database import (
    DatabaseHandle,
    DatabaseUnreachable,
    check_reachable,
    open_database,
    unreachable,
)
from runtime.embedded import EmbeddedDatabaseError
from runtime.features import FeatureError, Features, load_features
from runtime.gc_tuning import tune_after_startup, undo
from runtime.health import (
    Health,
    consumer_check,
    health_routes,
    jwks_check,
    ping_check,
    sequencer_check,
)
from runtime.http_edge import bounded_protocol
from runtime.instrument import Instruments, operation_metrics
from runtime.logging import configure_logging
from runtime.metrics import Metrics, Refresher, metrics_route
from runtime.middleware import RuntimeMiddleware
from runtime.operations import ProjectionRetrier
from runtime.probes import (
    consumer_refresher,
    head_refresher,
    jwks_refresher,
    parked_refresher,
    sequencer_refresher,
)
from runtime.settings import (
    Settings,
    SettingsError,
    auth_from,
    limits_from,
    load_settings,
    persisted_from,
)
from runtime.websocket_edge import websocket_protocol
from schema.app import ExtensionFactory, LedgerGraphQL, make_graphql_app
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
from store.protocol import UNOBSERVED, CommandLog, EventStore, Leases, SnapshotStore, StoreObserver
from store.records import set_clock_skew
from store.sequencer import Sequencer

log = logging.getLogger("server")


# -- the pieces ---------------------------------------------------------------------


@dataclass
class Monitoring:
    """Where started pieces register what ``/metrics`` and ``/readyz`` report."""

    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    refreshers: list[Refresher] = field(default_factory=list)


@dataclass
class Stores:
    """The storage backends, all of one kind (MongoDB or in-memory)."""

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
    events: EventStore  # ``stores.events``
    service: ApplicationService
    checkpoints: CheckpointStore
    progress: ProgressBoard
    hub: Hub
    status: StatusReporter
    rebuilder: Rebuilder
    retrier: ProjectionRetrier
    features: Features
    consumers: ConsumerGroup | None = None
    live: Live | None = None
    graphql: LedgerGraphQL | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# -- storage ------------------------------------------------------------------------


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


async def enter_database(settings: Settings, stack: AsyncExitStack) -> DatabaseHandle:
    """``open_database`` in a thread; its close is pushed first so it runs last.

    An embedded database this process started is supervised: if it dies, it is
    started again on the same port (``supervise_embedded``).
    """
    handle = await asyncio.to_thread(open_database, settings)
    # The first callback on the stack runs last: the embedded database stops last.
    stack.push_async_callback(asyncio.to_thread, handle.close)
    if handle.embedded is not None:
        task = asyncio.get_running_loop().create_task(
            supervise_embedded(handle), name="embedded database supervisor"
        )

        async def stop_supervising() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        stack.push_async_callback(stop_supervising)
    return handle


async def supervise_embedded(handle: DatabaseHandle, interval: float = 0.5) -> None:
    """Restart the embedded development database whenever it dies; log the gap.

    Development only: with ``MONGODB_URL`` the database is the operator's, and
    requests answer ``UNAVAILABLE`` while it is away. A restart that fails is
    tried again after ``interval``.
    """
    died_at: float | None = None
    while (embedded := handle.embedded) is not None:
        await asyncio.sleep(interval)
        code = embedded.exit_code()
        if code is None:
            continue
        if died_at is None:
            died_at = time.monotonic()
            log.error("the embedded database exited (status %s); starting it again", code)
        try:
            await asyncio.to_thread(embedded.start)
        except EmbeddedDatabaseError as error:
            log.error("the embedded database did not start again: %s", error)
            continue
        log.warning(
            "the embedded database is back after %.1fs without it", time.monotonic() - died_at
        )
        died_at = None


async def enter_mongo_client(
    url: str, stack: AsyncExitStack, health: Health, connect_seconds: float = 10.0
) -> AsyncMongoClient[dict[str, Any]]:
    """A connected PyMongo async client (pinged once), with a ``database`` readiness check.

    Raises ``DatabaseUnreachable`` (one line, hosts without credentials) when
    the first ping gets no answer within ``connect_seconds``.
    """
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=int(connect_seconds * 1000), tz_aware=True, appname="ledger"
    )
    stack.push_async_callback(client.close)
    started = time.monotonic()
    try:
        await client.admin.command("ping")
    except PyMongoError as error:
        raise unreachable(url, time.monotonic() - started, error) from None
    health.add("database", ping_check(lambda: client.admin.command("ping")))
    return client


# -- write side, consumers, live ----------------------------------------------------


def enter_background_task(
    stack: AsyncExitStack,
    name: str,
    run: Callable[[], Coroutine[Any, Any, None]],
    stop: Callable[[], None],
    timeout: float,
) -> asyncio.Task[None]:
    """Run ``run()`` as a task; on unwind call ``stop()``, wait ``timeout``, then cancel."""
    task = asyncio.get_running_loop().create_task(run(), name=name)

    async def stop_task() -> None:
        stop()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("the %s did not stop in time; cancelling it", name)
            task.cancel()

    stack.push_async_callback(stop_task)
    return task


def consumers(settings: Settings, parts: Components, owner: str) -> ConsumerGroup:
    deps = ConsumerDeps(
        parts.stores.documents, parts.events, parts.features.registry, parts.hub, parts.service
    )
    handlers = parts.features.read_sides.handlers(deps)
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
    attention = parts.features.read_sides.attention(parts.stores.documents)
    monitoring.refreshers.append(parked_refresher(attention))


async def start_live(parts: Components, stack: AsyncExitStack, *, queue_size: int = 1000) -> None:
    """The feed tail and the live read models; ``queue_size``: a subscriber's queue bound."""
    live = create_live(
        parts.events,
        parts.checkpoints,
        parts.features.read_sides.live_sources(parts.stores.documents),
        hub=parts.hub,
        progress=parts.progress,
        poll_interval=min(parts.settings.poll_interval_seconds, 0.1),
        queue_size=queue_size,
    )
    tracing.watch_pushes(live.feed, parts.hub)
    await live.start()
    stack.push_async_callback(live.stop)
    parts.live = live


# -- GraphQL ------------------------------------------------------------------------


def graphql_app(parts: Components, metrics: Metrics) -> LedgerGraphQL:
    settings, documents = parts.settings, parts.stores.documents
    page = settings.max_page_size
    context = Context(
        service=parts.service,
        events=parts.events,
        views=parts.features.views(documents, page),
        catalog=parts.features.catalog,
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
    schema = parts.features.schema(context.limits, extensions=extensions)
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


# -- the whole service --------------------------------------------------------------


async def core_components(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics, health: Health
) -> Components:
    """The stores, the (observed) Application Service and what reads the stores."""
    set_clock_skew(settings.clock_skew_seconds)  # 0 outside tests of disagreeing clocks
    if not tracing.enabled() and tracing.configure():  # OTEL_* (runtime/tracing.py)
        stack.callback(tracing.shutdown)
    features = load_features(settings.features)
    instruments = Instruments(metrics)
    database, stores = await open_stores(settings, stack, health, instruments)
    events = stores.events
    service = ApplicationService(
        events,
        stores.snapshots,
        stores.command_log,
        features.registry,
        tracing.traced_deciders(features.deciders),
        snapshot_every=settings.snapshot_every,
        observer=instruments,
        rejection_types=features.rejection_types,
    )
    stack.push_async_callback(service.close)
    checkpoints, documents = CheckpointStore(stores.documents), stores.documents
    read_sides, consumers = features.read_sides, features.read_sides.consumers
    factories = read_sides.factories(ConsumerDeps(documents, events, features.registry))
    return Components(
        settings, database, stores, events, service, checkpoints,
        ProgressBoard(), Hub(),
        StatusReporter(events, checkpoints, stores.leases, consumers,
                       attention=read_sides.attention(documents)),
        Rebuilder(events, documents, checkpoints, stores.leases, factories,
                  lease_ttl=settings.lease_ttl_seconds),
        ProjectionRetrier(checkpoints, consumers,
                          followups=read_sides.followups(service, documents)),
        features,
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


# -- the ASGI app -------------------------------------------------------------------


class LateApp:
    """Forwards to ``app`` once it is set."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # The app's own coroutine, not one awaiting it: no frame of this stays
        # alive for as long as a WebSocket connection lasts.
        if self.app is not None:
            return self.app(scope, receive, send)
        return self._starting(scope, send)

    @staticmethod
    async def _starting(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
        else:
            body = b'{"errors":[{"message":"service is starting"}]}'
            await send({
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": body})


GRAPHQL_PATH = "/graphql"


class ServiceApp(Starlette):
    """Starlette, with a direct lane for the GraphQL endpoint.

    HTTP requests and WebSocket connections to ``/graphql`` go from uvicorn
    straight to the service's own middleware and the GraphQL app (``lanes``,
    by scope type). Starlette's own layers have nothing to do for them: its
    error middleware answers an exception escaping the app with a 500 and
    re-raises it, as uvicorn does without it; its exception middleware handles
    only Starlette's exceptions, which the GraphQL app does not raise; the
    router would pick the same app. Yet they cost each HTTP deposit request
    about 2% of its function calls, and each would keep a suspended frame for
    a WebSocket's whole life: about 3 KiB per idle subscriber. Everything else
    (other paths, the lifespan, a request under a ``root_path``) goes through
    Starlette as before.
    """

    def __init__(self, *, lanes: dict[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A coroutine function, as servers detect ASGI 3 apps by it.
        lane = self.lanes.get(scope["type"])
        if lane is not None and scope["path"] == GRAPHQL_PATH and not scope.get("root_path"):
            scope["app"] = self  # as Starlette sets it for every request
            await lane(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def wrapped(app: ASGIApp, middleware: list[Middleware]) -> ASGIApp:
    """``app`` inside ``middleware`` (outermost first), as Starlette stacks its own."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


def service_app(
    settings: Settings,
    monitoring: Monitoring,
    graphql: ASGIApp,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
) -> Starlette:
    """The Starlette app: probes and metrics beside ``graphql``, behind the runtime middleware."""
    metrics, health = monitoring.metrics, monitoring.health
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    # The router tries routes in order: the GraphQL endpoint, which takes nearly
    # every request, goes first.
    routes: list[BaseRoute] = [
        Route(GRAPHQL_PATH, graphql),
        WebSocketRoute(GRAPHQL_PATH, graphql),
        *health_routes(health, token),
        # GraphiQL's own files, when fetched at build time (runtime/graphiql.py).
        *(graphiql.asset_routes(settings.graphiql_assets_dir) if settings.graphiql_enabled else ()),
        metrics_route(metrics, monitoring.refreshers, token),
    ]
    # Outermost first: request ids, counts and the body limit see every request,
    # preflights included; CORS answers preflights and marks cross-origin responses.
    runtime = Middleware(RuntimeMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    middleware = [runtime, *cors_middleware(settings)]
    # The GraphQL path takes the direct lane (``ServiceApp``): the same middleware
    # around the same app, and nothing of Starlette between. WebSockets skip CORS,
    # which passes them on untouched.
    lanes = {"http": wrapped(graphql, middleware), "websocket": wrapped(graphql, [runtime])}
    app = ServiceApp(routes=routes, middleware=middleware, lifespan=lifespan, lanes=lanes)
    app.state.settings, app.state.metrics, app.state.health = settings, metrics, health
    app.state.components = None  # set by the lifespan once everything started
    return app


Start = Callable[[Settings, AsyncExitStack, Monitoring], Awaitable[Components]]
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def serving_lifespan(
    settings: Settings, monitoring: Monitoring, graphql: LateApp, start: Start
) -> Lifespan:
    """Run ``start`` before serving, fill the GraphQL slot, unwind the stack on shutdown.

    ``/readyz`` follows the phase: "starting", "serving", then "stopping" before the unwind.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            components = await start(settings, stack, monitoring)
            app.state.components = components
            graphql.app = components.graphql
            # the start-up heap is not walked again by the collector (runtime.gc_tuning)
            stack.callback(undo, tune_after_startup())
            monitoring.health.phase = "serving"
            log.info("serving on http://%s:%s/graphql", settings.host, settings.port)
            try:
                yield
            finally:
                monitoring.health.phase = "stopping"
                log.info("shutting down")
        log.info("stopped")

    return lifespan


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole service as an ASGI app; nothing starts until its lifespan runs."""
    settings = settings or load_settings()
    monitoring, graphql = Monitoring(), LateApp()
    lifespan = serving_lifespan(settings, monitoring, graphql, start_components)
    return service_app(settings, monitoring, graphql, lifespan)


# -- the process --------------------------------------------------------------------


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our handler, already installed, formats and redacts
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # Requests in flight get half of the stop's time; the lifespan's shutdown the rest.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds / 2)),
        lifespan="on",
        ws_max_size=settings.max_body_bytes,
        # httptools with bounded request heads and deadlines for slow clients.
        http=bounded_protocol(
            settings.max_header_bytes,
            settings.header_timeout_seconds,
            settings.body_timeout_seconds,
        ),
        # Subscription messages are small and go to many sockets: compressing each
        # per connection costs more CPU (both ends) and memory than it saves.
        ws_per_message_deflate=False,
        ws=websocket_protocol(settings.websocket_protocol),
        server_header=False,
    )


def run_uvicorn(
    make_app: Callable[[Settings], Starlette],
    settings: Settings,
    on_exit: Callable[[Starlette], None] | None = None,
) -> None:
    """Log set-up, then serve ``make_app(settings)`` until a signal; exit 3 if it never started.

    A port already in use ends the run at once with exit status 1 and one line
    that says so, before anything starts (no database, no "serving on" line).
    """
    if port_in_use(settings.host, settings.port):
        raise SystemExit(
            f"ledger: port {settings.port} on {settings.host} is already in use "
            "(another server running?); choose another with --port N or PORT=N"
        )
    configure_logging(settings.effective_log_level, settings.effective_log_format)
    log.info("starting with %s", settings.describe())
    if settings.auth_mode == "dev":
        log.warning("AUTH_MODE=dev: every request acts as the admin user 'dev'")
    if settings.is_production and settings.metrics_token is None:
        log.warning("METRICS_TOKEN is unset: keep /metrics off the internet (docs/security.md)")
    app = make_app(settings)
    server = BoundedStop(
        uvicorn_config(app, settings),
        settings.shutdown_timeout_seconds,
        lambda: on_exit(app) if on_exit is not None else None,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down cleanly;
    # turn that into a normal exit instead of a death by signal or a traceback.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve())
    finally:
        server.settle()
        if on_exit is not None:
            on_exit(app)
    if not server.started:
        raise SystemExit(3)


class BoundedStop(uvicorn.Server):
    """uvicorn's server whose stop, once a signal asked for it, ends within ``limit`` seconds.

    Whatever hangs (a database that stopped answering, a task that ignores
    cancellation), a watchdog thread started by the first SIGTERM/SIGINT logs
    what happened, runs ``last_words`` (stopping the embedded database, a child
    process that must not be orphaned) and ends the process with status 1.

    Exactly one of the two ends the process: the watchdog, or the normal stop
    once ``settle`` returns. A watchdog that fires while the normal stop is
    finishing wins, so its log line and the exit status always agree.
    """

    def __init__(self, config: uvicorn.Config, limit: float, last_words: Callable[[], None]):
        super().__init__(config)
        self._limit = limit
        self._last_words = last_words
        self._watchdog: threading.Timer | None = None
        self._ending = threading.Lock()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._limit, self._overrun)
            self._watchdog.daemon = True
            self._watchdog.start()
        super().handle_exit(sig, frame)

    def settle(self) -> None:
        """The normal stop is done: disarm the watchdog, or wait for it to end the process."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._ending.acquire()  # never returns if the watchdog took it: it exits the process

    def _overrun(self) -> None:
        if not self._ending.acquire(blocking=False):
            return  # the normal stop finished first
        log.error("stopping took longer than %ss; exiting without finishing it", self._limit)
        try:
            self._last_words()
        finally:
            logging.shutdown()
            os._exit(1)


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because something listens there already.

    Bound the way uvicorn binds (``SO_REUSEADDR``), so a port in TIME_WAIT is
    free. Any other bind failure is left for uvicorn to report.
    """
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def stop_embedded_database(app: Starlette) -> None:
    """uvicorn's exit hook: stop the embedded database if the lifespan did not.

    Normally the lifespan has stopped it; after a forced exit (a second Ctrl-C, or the
    bounded stop giving up while a stop still waits in a thread) it has not.
    """
    components: Components | None = app.state.components
    database = components.database if components is not None else None
    if database is not None:
        database.close()
        database.kill_leftover()


def serve(settings: Settings) -> None:
    """Run the service under uvicorn in the foreground until SIGINT/SIGTERM.

    An unreachable ``MONGODB_URL`` ends it before serving: one line, exit status 1.
    """
    try:
        check_reachable(settings)
    except DatabaseUnreachable as error:
        raise SystemExit(f"ledger: {error}") from None
    run_uvicorn(create_app, settings, on_exit=stop_embedded_database)


def main() -> None:
    """``python server.py``: serve with the settings from the environment."""
    try:
        settings = load_settings()
        load_features(settings.features)  # a bad FEATURES entry ends it before serving
    except (SettingsError, FeatureError) as error:
        raise SystemExit(f"ledger: {error}") from None
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(settings)
