"""The per-request GraphQL context.

The composition root builds one ``Context`` holding the process-wide services
(with ``user`` left anonymous); ``schema.app`` copies it for every HTTP request
and WebSocket connection with ``Context.copy_for``, filling in the caller
(``user``), the Starlette request/response and, on WebSockets, the
``connection_params`` that strawberry sets after ``connection_init``.

Resolvers read only from here: the Application Service for commands and time
travel, the features' read views (``view(AccountsView)``) for queries, the
store's read side for the audit log, ``waiting`` for read-your-writes,
``hub``/``live`` for subscriptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from application.service import ApplicationService
from projections.checkpoints import ReadYourWrites, StatusReporter
from projections.hub import Hub
from projections.live import Live
from schema.auth import ANONYMOUS, AuthSettings, User
from schema.limits import Limits
from store.protocol import EventStore

View = TypeVar("View")
NodeReader = Callable[["Context", str], Awaitable[object | None]]
"""``(context, id) -> node``: a feature's ``node(id:)`` read; None if absent or not the caller's."""


class ProjectionRetry(Protocol):
    """What ``retryProjection`` uses of ``runtime.operations.ProjectionRetrier``."""

    def knows(self, name: str) -> bool: ...

    async def retry(self, name: str) -> None: ...


@dataclass(frozen=True)
class Catalog:
    """What the generic resolvers know of the features' read side (``schema.app.catalog``).

    - ``read_models``: the consumers a ``consistency: {position}`` waits for;
    - ``stream_documents``: id prefix -> read model holding one document per
      stream of that kind (``consistency: {streamId, version}``);
    - ``nodes``: id prefix -> how ``node(id:)`` reads an id of that kind.
    """

    read_models: tuple[str, ...] = ()
    stream_documents: Mapping[str, str] = field(default_factory=dict)
    nodes: Mapping[str, NodeReader] = field(default_factory=dict)


def views_by_type(views: Iterable[object]) -> dict[type, object]:
    """The ``Context.views`` mapping for view objects, one per class."""
    found: dict[type, object] = {}
    for view in views:
        if type(view) in found:
            raise ValueError(f"two views of type {type(view).__name__}")
        found[type(view)] = view
    return found


@dataclass
class Context:
    """Everything a resolver may use. One copy per request / WebSocket connection.

    - ``service``: the Application Service (handle, load, history).
    - ``events``: the event store's read side (``read_all``, ``read_stream``,
      ``head_position``) behind the admin audit log and time travel.
    - ``views``: the features' read views by class; resolvers use ``view(cls)``.
    - ``catalog``: what generic resolvers know of the features (``Catalog``).
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
    views: Mapping[type, object] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=Catalog)
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

    def view(self, cls: type[View]) -> View:
        """The read view of class ``cls``; ``LookupError`` when this context has none."""
        found = self.views.get(cls)
        if not isinstance(found, cls):
            raise LookupError(f"no {cls.__name__} in this context")
        return found

    def copy_for(self, user: User, request: Any, response: Any) -> Self:
        """A new ``Context`` like this one with the caller and request/response set.

        A shallow copy of the instance dict rather than ``dataclasses.replace``,
        which runs ``__init__`` and reads every field; this runs on every request.
        ``self`` is not changed.
        """
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.user, copy.request, copy.response = user, request, response
        return copy
