"""A small in-process wiring of the service for schema tests (no server, no network).

In-memory store, the real Application Service and the real projectors and
read views; projections are caught up explicitly with ``project()`` so tests
are deterministic. ``run(query, variables, user=...)`` executes through the
real schema with a context like the one ``schema.app`` builds per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import jwt
import strawberry
from strawberry.types import ExecutionResult

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from projections.accounts import AccountsProjector
from projections.documents_memory import InMemoryDocumentStore
from projections.ledger import LedgerProjector
from projections.statement import StatementProjector
from projections.transfers import TransfersProjector
from schema.app import build_schema
from schema.auth import DEV_USER, AuthSettings, User
from schema.context import Context
from schema.limits import Limits
from store.memory import InMemoryCommandLog, InMemoryEventStore, InMemorySnapshotStore
from store.protocol import RecordedEvent
from tests.schema.views import make_views

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


class Handler(Protocol):
    name: str

    async def prepare(self) -> None: ...

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None: ...


def token(sub: str, roles: Sequence[str] = (), *, ttl: float = 300, secret: str = SECRET) -> str:
    """An HS256 JWT as the service expects (``exp`` in ``ttl`` seconds; negative: expired)."""
    claims = {"sub": sub, "roles": list(roles), "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Wiring:
    store: InMemoryEventStore
    service: ApplicationService
    documents: InMemoryDocumentStore
    handlers: list[Handler]
    context: Context
    schema: strawberry.Schema
    checkpoint: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    async def project(self) -> None:
        """Feed every new event to every projector, in position order."""
        while True:
            batch = await self.store.read_all(self.checkpoint, 500)
            if not batch:
                return
            for handler in self.handlers:
                await handler.handle_batch(batch)
            position = batch[-1].position
            assert position is not None
            self.checkpoint = position

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


async def make_wiring(limits: Limits | None = None, auth: AuthSettings | None = None) -> Wiring:
    store = InMemoryEventStore()
    service = ApplicationService(
        store, InMemorySnapshotStore(), InMemoryCommandLog(), EVENTS, DECIDERS
    )
    documents = InMemoryDocumentStore()
    handlers: list[Handler] = [
        AccountsProjector(documents),
        StatementProjector(documents),
        TransfersProjector(documents),
        LedgerProjector(documents, store),
    ]
    for handler in handlers:
        await handler.prepare()
    limits = limits or Limits()
    context = Context(
        service=service,
        events=store,
        auth=auth or AuthSettings(),
        limits=limits,
        **make_views(documents, store),
    )
    return Wiring(store, service, documents, handlers, context, build_schema(limits))
