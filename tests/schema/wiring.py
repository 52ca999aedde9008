"""A small in-process wiring of the service for schema tests (no server, no network).

In-memory store, the real Application Service and the real projectors and
read views; projections are caught up explicitly with ``project()`` so tests
are deterministic. ``run(query, variables, user=...)`` executes through the
real schema with a context like the one ``schema.app`` builds per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jwt
import strawberry
from strawberry.types import ExecutionResult

from application.service import ApplicationService
from domain.bank import DECIDERS, EVENTS
from projections.accounts import AccountsProjector
from projections.checkpoints import CheckpointStore
from projections.consumer import Consumer, EventHandler
from projections.documents_memory import InMemoryDocumentStore
from projections.ledger import LedgerProjector
from projections.readmodels import AccountsView, LedgerView, StatementView, TransfersView
from projections.statement import StatementProjector
from projections.status import StatusReporter
from projections.transfer_manager import TransferManager
from projections.transfers import TransfersProjector
from projections.waiting import ReadYourWrites
from runtime.operations import ProjectionRetrier
from schema.app import build_schema
from schema.auth import DEV_USER, AuthSettings, User
from schema.context import Context
from schema.limits import Limits
from store.memory import (
    InMemoryCommandLog,
    InMemoryEventStore,
    InMemoryLeases,
    InMemorySnapshotStore,
)

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def token(sub: str, roles: Sequence[str] = (), *, ttl: float = 300, secret: str = SECRET) -> str:
    """An HS256 JWT as the service expects (``exp`` in ``ttl`` seconds; negative: expired)."""
    claims = {"sub": sub, "roles": list(roles), "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Wiring:
    store: InMemoryEventStore
    service: ApplicationService
    documents: InMemoryDocumentStore
    consumers: list[Consumer]
    context: Context
    schema: strawberry.Schema

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


def _handlers(
    documents: InMemoryDocumentStore, store: InMemoryEventStore, service: ApplicationService
) -> list[EventHandler]:
    """The four projectors and the transfer process manager."""
    return [
        AccountsProjector(documents),
        StatementProjector(documents),
        TransfersProjector(documents),
        LedgerProjector(documents, store),
        TransferManager(service, store),
    ]


async def make_wiring(limits: Limits | None = None, auth: AuthSettings | None = None) -> Wiring:
    store = InMemoryEventStore()
    service = ApplicationService(
        store, InMemorySnapshotStore(), InMemoryCommandLog(store), EVENTS, DECIDERS
    )
    documents = InMemoryDocumentStore()
    checkpoints, leases = CheckpointStore(documents), InMemoryLeases()
    handlers = _handlers(documents, store, service)
    consumers = []
    for handler in handlers:
        await handler.prepare()
        consumers.append(Consumer(handler, store, checkpoints, leases))
    limits = limits or Limits()
    context = Context(
        service=service,
        events=store,
        accounts=AccountsView(documents),
        statements=StatementView(documents),
        transfers=TransfersView(documents),
        ledger=LedgerView(documents),
        waiting=ReadYourWrites(documents, checkpoints, poll_interval=0.01),
        status=StatusReporter(store, checkpoints, leases, [h.name for h in handlers]),
        retrier=ProjectionRetrier(checkpoints, [h.name for h in handlers]),
        auth=auth or AuthSettings(),
        limits=limits,
    )
    return Wiring(store, service, documents, consumers, context, build_schema(limits))
