"""The per-request GraphQL context.

``server.py`` builds one ``Context`` holding the process-wide services (with
``user`` left anonymous); ``schema.app`` copies it for every HTTP request and
WebSocket connection with ``Context.copy_for``, filling in the caller
(``user``), the Starlette request/response and, on WebSockets, the
``connection_params`` that strawberry sets after ``connection_init``.

Resolvers read only from here: the Application Service for commands and time
travel, read-model views for queries, the store's read side for the audit log,
``waiting`` for read-your-writes, ``hub``/``live`` for subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from application.service import ApplicationService
from projections.hub import Hub
from projections.live import Live
from projections.readmodels import AccountsView, LedgerView, StatementView, TransfersView
from projections.status import StatusReporter
from projections.waiting import ReadYourWrites
from schema.auth import ANONYMOUS, AuthSettings, User
from schema.limits import Limits
from store.protocol import EventStore


class ProjectionRetry(Protocol):
    """What ``retryProjection`` uses of ``runtime.operations.ProjectionRetrier``."""

    def knows(self, name: str) -> bool: ...

    async def retry(self, name: str) -> None: ...


@dataclass
class Context:
    """Everything a resolver may use. One copy per request / WebSocket connection.

    - ``service``: the Application Service (handle, load, history).
    - ``events``: the event store's read side (``read_all``, ``read_stream``,
      ``head_position``) behind the admin audit log and time travel.
    - ``accounts`` / ``statements`` / ``transfers`` / ``ledger``: the read
      views of ``projections.readmodels``.
    - ``waiting``: read-your-writes waits (``consistency`` argument); without
      it a query with ``consistency`` is refused.
    - ``status``: projection status (``projections`` query).
    - ``retrier``: asks a consumer stopped on an error to retry
      (``retryProjection``); without it the mutation is refused.
    - ``hub`` / ``live``: for subscriptions (None when a process serves none).
    - ``user``: the caller (``schema.auth``); ``auth``: how callers are verified.
    - ``limits``: ``schema.limits.Limits``.
    - ``request`` / ``response`` / ``connection_params``: set per request by
      ``schema.app`` (``connection_params`` by strawberry on WebSockets).
    """

    service: ApplicationService
    events: EventStore
    accounts: AccountsView
    statements: StatementView
    transfers: TransfersView
    ledger: LedgerView
    waiting: ReadYourWrites | None = None
    status: StatusReporter | None = None
    retrier: ProjectionRetry | None = None
    hub: Hub | None = None
    live: Live | None = None
    user: User = ANONYMOUS
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: Limits = field(default_factory=Limits)
    request: Any = None
    response: Any = None
    connection_params: dict[str, object] | None = None

    def copy_for(self, user: User, request: Any, response: Any) -> Self:
        """A new ``Context`` like this one with the caller and request/response set.

        The same copy as ``dataclasses.replace(self, user=..., ...)``, which
        costs ~4 us per request (``fields()``, a getattr per field, ``__init__``);
        a shallow copy of the instance dict is ~1 us. ``self`` is not changed.
        """
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.user, copy.request, copy.response = user, request, response
        return copy
