"""An in-process server for the WebSocket tests: the real schema app on uvicorn.

Everything runs on the test's event loop (in-memory store, real projectors,
real ``Live``), so tests can count asyncio tasks and hub subscribers while
real clients talk to it over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from projections.catalog import PROJECTORS, consumer_group, standard_handlers
from projections.checkpoints import CheckpointStore
from projections.consumer import ConsumerSettings
from projections.consumer_group import ConsumerGroup
from projections.documents_memory import InMemoryDocumentStore
from projections.hub import Hub
from projections.live import Live, create_live
from projections.progress import ProgressBoard
from projections.readmodels import AccountsView, LedgerView, StatementView, TransfersView
from runtime.embedded import free_port
from schema.app import make_graphql_app
from schema.auth import AuthSettings
from schema.context import Context
from schema.limits import Limits
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)
from tests.live.helpers import eventually


@dataclass
class Served:
    url: str  # ws://127.0.0.1:<port>/graphql
    service: ApplicationService
    store: InMemoryEventStore
    hub: Hub
    live: Live
    consumers: ConsumerGroup


def _consumers(
    store: InMemoryEventStore, documents: InMemoryDocumentStore, hub: Hub, progress: ProgressBoard
) -> ConsumerGroup:
    handlers = standard_handlers(documents, store, hub=hub, names=PROJECTORS)
    settings = ConsumerSettings(poll_interval=0.02)
    checkpoints, leases = CheckpointStore(documents), InMemoryLeases()
    return consumer_group(
        handlers, store, checkpoints, leases, settings=settings, progress=progress
    )


def _context(
    service: ApplicationService,
    store: InMemoryEventStore,
    documents: InMemoryDocumentStore,
    hub: Hub,
    live: Live,
    auth: AuthSettings | None,
    limits: Limits | None,
) -> Context:
    return Context(
        service=service,
        events=store,
        accounts=AccountsView(documents),
        statements=StatementView(documents),
        transfers=TransfersView(documents),
        ledger=LedgerView(documents),
        hub=hub,
        live=live,
        auth=auth or AuthSettings(),
        limits=limits or Limits(),
    )


def _server(context: Context, port: int) -> uvicorn.Server:
    graphql = make_graphql_app(context)
    app = Starlette(routes=[Route("/graphql", graphql), WebSocketRoute("/graphql", graphql)])
    return uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )


@contextlib.asynccontextmanager
async def serve(
    *,
    auth: AuthSettings | None = None,
    limits: Limits | None = None,
    queue_size: int = 1000,
    project: bool = True,
) -> AsyncIterator[Served]:
    """Run the app on a free loopback port until the block ends.

    ``project=False`` leaves the consumers stopped (``Served.consumers.start()``
    starts them), so the read models lag the event store until then.
    """
    store, documents, hub, progress = (
        InMemoryEventStore(),
        InMemoryDocumentStore(),
        Hub(),
        ProgressBoard(),
    )
    consumers = _consumers(store, documents, hub, progress)
    service = ApplicationService(
        store, InMemorySnapshotStore(), InMemoryCommandLog(store), EVENTS, DECIDERS
    )
    live = create_live(
        store,
        documents,
        CheckpointStore(documents),
        hub=hub,
        progress=progress,
        queue_size=queue_size,
    )
    port = free_port()
    server = _server(_context(service, store, documents, hub, live, auth, limits), port)
    if project:
        consumers.start()
    await live.start()
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        yield Served(f"ws://127.0.0.1:{port}/graphql", service, store, hub, live, consumers)
    finally:
        server.should_exit = True
        await task
        await live.stop()
        await consumers.stop()
