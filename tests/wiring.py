"""The test wiring: the service as ``runtime.bootstrap`` composes it, on in-memory stores.

Every in-process test starts the same pieces production starts, through
``start_components`` with ``STORE=memory`` settings; the options a test needs are
settings (``memory_settings``) or the bootstrap's own arguments. On top of that:

- ``Wiring`` (``make_wiring``): the stores, the Application Service, the
  consumers stepped explicitly with ``project()`` (deterministic), and the real
  schema and ``Context`` of the GraphQL app, executed without HTTP;
- ``serve``: the GraphQL app on uvicorn on a loopback port, with the consumers and
  the live read models running on the test's event loop;
- ``World`` (``memory_world``): stores, service and consumer groups for the read
  side's tests, on the bootstrap's in-memory stores or any other stores, built from
  the features the bootstrap loads (``FEATURES``, ``runtime/features.py``);
- ``Backend`` / ``open_account`` / ``with_id``: stores and Application Services
  for the write side's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
import pytest
import strawberry
import uvicorn
from pymongo.asynchronous.database import AsyncDatabase
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.types import ExecutionResult

from application.ids import new_account_id, new_command_id, new_transfer_id
from application.service import ApplicationService, CommandContext
from domain.accounts import CloseAccount, Deposit, OpenAccount, Withdraw
from domain.transfers import RequestTransfer
from projections.checkpoints import CheckpointStore, ProgressBoard
from projections.consumer import (
    Consumer,
    ConsumerGroup,
    ConsumerSettings,
    consumer_group,
    new_owner_id,
)
from projections.documents import Document, DocumentStore, InMemoryDocumentStore, Query
from projections.hub import Hub
from projections.live import Live
from projections.projector import ChangePublisher, ConsumerDeps
from runtime.bootstrap import (
    Components,
    Monitoring,
    consumers,
    graphql_app,
    memory_stores,
    mongo_stores,
    start_components,
    start_live,
)
from runtime.embedded import free_port
from runtime.features import load_features
from runtime.metrics import Metrics
from runtime.settings import Settings, load_settings
from runtime.websocket_edge import websocket_protocol
from schema.auth import DEV_USER, AuthSettings, User
from schema.context import Context
from schema.limits import Limits
from store.protocol import CommandLog, EventStore, Leases, SnapshotStore
from tests.application.doubles import CountingStore
from tests.live.helpers import eventually

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def token(sub: str, roles: Sequence[str] = (), *, ttl: float = 300, secret: str = SECRET) -> str:
    """An HS256 JWT as the service expects (``exp`` in ``ttl`` seconds; negative: expired)."""
    claims = {"sub": sub, "roles": list(roles), "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


def memory_settings(limits: Limits | None = None, **overrides: Any) -> Settings:
    """``STORE=memory`` settings, no .env; ``limits`` become the matching settings."""
    values: dict[str, Any] = {
        item.name: getattr(limits or Limits(), item.name)
        for item in dataclasses.fields(Limits)
        if item.name in Settings.model_fields  # default_page_size is not a setting
    }
    values.update(overrides)
    return load_settings(env_file=None, store="memory", **values)


# What the bootstrap composes on these settings: the features (``FEATURES``) and what
# the read- and write-side tests take from them.
FEATURES = load_features(memory_settings().features)
READ_SIDES = FEATURES.read_sides
EVENTS = FEATURES.registry
DECIDERS = FEATURES.deciders
PROJECTORS = READ_SIDES.read_models  # the rebuildable read models
CONSUMERS = READ_SIDES.consumers  # and the process managers


def _with_auth(context: Context, auth: AuthSettings | None) -> Context:
    """The composed context, verifying callers with ``auth`` (a test's identity provider)."""
    return context if auth is None else replace(context, auth=auth)


# -- schema tests: the GraphQL app's schema and context, no HTTP --------------------------


@dataclass
class Wiring:
    parts: Components
    consumers: list[Consumer]
    context: Context
    schema: strawberry.Schema
    stack: AsyncExitStack

    @property
    def store(self) -> EventStore:
        return self.parts.stores.events

    @property
    def service(self) -> ApplicationService:
        return self.parts.service

    @property
    def documents(self) -> DocumentStore:
        return self.parts.stores.documents

    async def project(self, rounds: int = 20) -> None:
        """Step every consumer until none has work (transfers need a few rounds)."""
        for _ in range(rounds):
            busy = False
            for consumer in self.consumers:
                while await consumer.step():
                    busy = True
            if not busy:
                return

    async def run(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        user: User = DEV_USER,
    ) -> ExecutionResult:
        context = replace(self.context, user=user)
        return await self.schema.execute(
            query, variable_values=dict(variables or {}), context_value=context
        )

    async def data(
        self, query: str, variables: Mapping[str, Any] | None = None, *, user: User = DEV_USER
    ) -> dict[str, Any]:
        """Run and return ``data``, failing the test on any GraphQL error."""
        result = await self.run(query, variables, user=user)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data

    async def event_count(self) -> int:
        return await self.store.head_position()

    async def close(self) -> None:
        await self.stack.aclose()


async def make_wiring(limits: Limits | None = None, auth: AuthSettings | None = None) -> Wiring:
    """The composed service without HTTP and without background consumers (``project()``)."""
    settings = memory_settings(limits)
    stack = AsyncExitStack()
    parts = await start_components(settings, stack, Monitoring(), workers=False, api=False)
    group = consumers(settings, parts, new_owner_id())
    app = graphql_app(parts, Metrics())
    assert isinstance(app.schema, strawberry.Schema)
    context = _with_auth(app.base, auth)
    return Wiring(parts, [group[name] for name in group.names], context, app.schema, stack)


# -- WebSocket tests: the GraphQL app on uvicorn ------------------------------------------


@dataclass
class Served:
    url: str  # ws://127.0.0.1:<port>/graphql
    service: ApplicationService
    store: EventStore
    hub: Hub
    live: Live
    consumers: ConsumerGroup


@contextlib.asynccontextmanager
async def serve(
    *,
    auth: AuthSettings | None = None,
    limits: Limits | None = None,
    queue_size: int = 1000,
    project: bool = True,
) -> AsyncIterator[Served]:
    """Run the GraphQL app on a free loopback port until the block ends.

    ``project=False`` leaves the consumers stopped (``Served.consumers.start()``
    starts them), so the read models lag the event store until then.
    """
    settings = memory_settings(limits, poll_interval_seconds=0.02)
    async with AsyncExitStack() as stack:
        parts = await start_components(settings, stack, Monitoring(), workers=False, api=False)
        group = consumers(settings, parts, new_owner_id())
        stack.push_async_callback(group.stop)
        if project:
            group.start()
        await start_live(parts, stack, queue_size=queue_size)
        assert parts.live is not None
        app = graphql_app(parts, Metrics())
        app.base = _with_auth(app.base, auth)
        routes = [Route("/graphql", app), WebSocketRoute("/graphql", app)]
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=routes),
                host="127.0.0.1",
                port=port,
                lifespan="off",
                log_config=None,
                ws=websocket_protocol(settings.websocket_protocol),
            )
        )
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started)
            yield Served(
                f"ws://127.0.0.1:{port}/graphql",
                parts.service,
                parts.stores.events,
                parts.hub,
                parts.live,
                group,
            )
        finally:
            server.should_exit = True
            await task


# -- read-side tests: stores, service and consumer groups ----------------------------------

FAST = ConsumerSettings(
    batch_size=100,
    poll_interval=0.01,
    lease_ttl=1.0,
    max_attempts=3,
    backoff_initial=0.001,
    backoff_max=0.01,
)


def make_service(
    store: EventStore, snapshots: SnapshotStore, command_log: CommandLog, **options: Any
) -> ApplicationService:
    """The Application Service with the features' deciders, event registry and rejections."""
    return ApplicationService(
        store,
        snapshots,
        command_log,
        EVENTS,
        DECIDERS,
        rejection_types=FEATURES.rejection_types,
        **options,
    )


@dataclass
class World:
    store: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog
    documents: DocumentStore
    leases: Leases
    progress: ProgressBoard = field(default_factory=ProgressBoard)

    def __post_init__(self) -> None:
        self.checkpoints = CheckpointStore(self.documents)
        self.service = make_service(self.store, self.snapshots, self.command_log)

    def group(
        self,
        *,
        names: tuple[str, ...] = CONSUMERS,
        owner: str | None = None,
        hub: ChangePublisher | None = None,
        settings: ConsumerSettings = FAST,
    ) -> ConsumerGroup:
        deps = ConsumerDeps(self.documents, self.store, EVENTS, hub=hub, sender=self.service)
        handlers = READ_SIDES.handlers(deps, names)
        return consumer_group(
            handlers,
            self.store,
            self.checkpoints,
            self.leases,
            settings=settings,
            progress=self.progress,
            owner=owner,
        )

    # -- commands ------------------------------------------------------------

    async def send(self, command: Any) -> Any:
        return await self.service.handle(command, CommandContext(command_id=new_command_id()))

    async def open_account(
        self, owner: str = "ann", currency: str = "EUR", deposit: int = 0
    ) -> str:
        account_id = new_account_id()
        await self.send(OpenAccount(account_id, owner, currency))
        if deposit:
            await self.send(Deposit(account_id, deposit))
        return account_id

    async def deposit(self, account_id: str, amount: int) -> None:
        await self.send(Deposit(account_id, amount))

    async def withdraw(self, account_id: str, amount: int) -> None:
        await self.send(Withdraw(account_id, amount))

    async def close(self, account_id: str) -> None:
        await self.send(CloseAccount(account_id))

    async def transfer(self, source: str, target: str, amount: int) -> str:
        transfer_id = new_transfer_id()
        await self.send(RequestTransfer(transfer_id, source, target, amount))
        return transfer_id


def memory_world() -> World:
    """A world on the bootstrap's in-memory stores."""
    stores = memory_stores()
    return World(
        stores.events, stores.snapshots, stores.command_log, stores.documents, stores.leases
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Return once ``predicate()`` holds; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


async def settle(
    group: ConsumerGroup,
    store: EventStore,
    timeout: float = 20.0,  # noqa: ASYNC109
    checkpoints: CheckpointStore | None = None,
) -> int:
    """Wait until every consumer of ``group`` reached a head that stopped moving.

    With ``checkpoints``, progress made by other instances (another group) counts too.
    """
    deadline = time.monotonic() + timeout
    stable, last_head = 0, -1
    while stable < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled: {await group.statuses()}")
        await store.sequence()
        head = await store.head_position()
        durable = await checkpoints.load_all(group.names) if checkpoints is not None else {}
        caught_up = all(
            max(group[name].position, durable[name].position if durable else 0) >= head
            for name in group.names
        )
        for name in group.names:
            if group[name].state == "stopped_on_error":
                raise AssertionError(f"{name} stopped: {group[name].last_error}")
        stable = stable + 1 if caught_up and head == last_head else 0
        last_head = head
        await asyncio.sleep(0.02)
    return last_head


async def dump(documents: DocumentStore, names: tuple[str, ...] = PROJECTORS) -> dict[str, Any]:
    """Every document of each logical read-model collection, in ``_id`` order."""
    result: dict[str, list[Document]] = {}
    for name in names:
        result[name] = await documents.find(await documents.resolve(name, fresh=True), Query())
    return result


async def rebuilt(store: EventStore, batch_size: int = 250) -> dict[str, Any]:
    """The read models projected from scratch into a fresh in-memory document store."""
    documents = InMemoryDocumentStore()
    for name, factory in READ_SIDES.factories(ConsumerDeps(documents, store, EVENTS)).items():
        handler = factory(name)
        await handler.prepare()
        position = 0
        while events := await store.read_all(position, batch_size):
            await handler.handle_batch(events)
            position = events[-1].position or position
    return await dump(documents)


# -- write-side tests: stores and Application Services ------------------------------------


@dataclass
class Backend:
    """One set of stores; services built from it share them (like processes sharing a DB)."""

    store: EventStore
    snapshots: SnapshotStore
    command_log: CommandLog

    def service(self, **options: Any) -> ApplicationService:
        return make_service(self.store, self.snapshots, self.command_log, **options)

    def counted(self) -> tuple[Backend, CountingStore]:
        """The same storage seen through a ``CountingStore``."""
        store = CountingStore(self.store)
        return Backend(store, self.snapshots, self.command_log), store


ServiceFactory = Callable[..., ApplicationService]


def memory_backend() -> Backend:
    """The bootstrap's in-memory stores."""
    stores = memory_stores()
    return Backend(stores.events, stores.snapshots, stores.command_log)


async def open_account(service: ApplicationService, *, deposit: int = 0) -> str:
    """A new open EUR account, with ``deposit`` minor units on it if > 0."""
    account_id = new_account_id()
    await service.handle(OpenAccount(account_id, "Ada", "EUR"))
    if deposit:
        await service.handle(Deposit(account_id, deposit))
    return account_id


def with_id(**fields: Any) -> CommandContext:
    """A context with a fresh command id (and any other fields given)."""
    return CommandContext(command_id=new_command_id(), **fields)


# -- fixtures (registered for every test by tests/conftest.py) -----------------------------


@pytest.fixture
async def wiring() -> AsyncIterator[Wiring]:
    wired = await make_wiring()
    try:
        yield wired
    finally:
        await wired.close()


@pytest.fixture
def memory() -> Backend:
    return memory_backend()


@pytest.fixture(params=["memory", "mongo"])
def backend_database(request: pytest.FixtureRequest) -> AsyncDatabase[dict[str, Any]] | None:
    """None for the in-memory backend, else a fresh database on the embedded server."""
    if request.param == "memory":
        return None
    database: AsyncDatabase[dict[str, Any]] = request.getfixturevalue("mongo_db")
    return database


@pytest.fixture
async def backend(backend_database: AsyncDatabase[dict[str, Any]] | None) -> Backend:
    """Each shared-storage test runs on every backend (Mongo: the embedded server)."""
    if backend_database is None:
        return memory_backend()
    stores = await mongo_stores(backend_database)
    return Backend(stores.events, stores.snapshots, stores.command_log)
