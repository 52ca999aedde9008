"""The per-request GraphQL context.

``server.py`` builds one ``Context`` holding the process-wide services (with
``user`` left anonymous); ``schema.app`` copies it for every HTTP request and
WebSocket connection with ``dataclasses.replace``, filling in the caller
(``user``), the Starlette request/response and, on WebSockets, the
``connection_params`` that strawberry sets after ``connection_init``.

Resolvers read only from here: the Application Service for commands and time
travel, read-model views for queries, the store's read side for the audit log,
``waiting`` for read-your-writes, ``hub``/``live`` for subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schema.auth import ANONYMOUS, AuthSettings, User
from schema.limits import Limits


@dataclass
class Context:
    """Everything a resolver may use. One copy per request / WebSocket connection.

    - ``service``: ``application.service.ApplicationService`` (handle, load, history).
    - ``events``: the ``store.protocol.EventStore`` read side (``read_all``,
      ``head_position``) behind the admin audit log.
    - ``accounts`` / ``statements`` / ``transfers`` / ``ledger``: the read-model
      views of ``projections.readmodels``.
    - ``waiting``: ``projections.waiting`` read-your-writes waiter.
    - ``status``: ``projections.status`` consumer status / lag reader.
    - ``hub`` / ``live``: ``projections.hub.Hub`` and the live feed, for
      subscriptions (None when a process serves no subscriptions).
    - ``user``: the caller (``schema.auth``); ``auth``: how callers are verified.
    - ``limits``: ``schema.limits.Limits``.
    """

    service: Any
    events: Any
    accounts: Any
    statements: Any
    transfers: Any
    ledger: Any
    waiting: Any = None
    status: Any = None
    hub: Any = None
    live: Any = None
    user: User = ANONYMOUS
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: Limits = field(default_factory=Limits)
    request: Any = None
    response: Any = None
    connection_params: dict[str, object] | None = None
