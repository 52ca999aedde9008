"""Features, assembling the schema, and the ASGI GraphQL app.

A ``Feature`` is what one feature contributes to the service (its domain, its
read side, its GraphQL mixins); ``build_schema(features, limits)`` composes
the features' Query, Mutation and Subscription mixins with the generic ones
(``CoreQuery``, ``CoreMutation``, ``CoreSubscription``) and adds the scalar
map, parser and validation caches, the limit extensions and error masking.
``make_graphql_app(context, schema)`` wraps it in strawberry's Starlette app
with both WebSocket protocols; every request gets a copy of ``context`` with
its caller filled in (``schema.auth``).

Error masking: GraphQL errors caused by unexpected exceptions are replaced by
"Unexpected error." for clients and logged here with their traceback.
Validation errors, ``ClientError`` (bad cursor, forbidden...) and scalar
parse errors are the client's to see and are passed through.

``limits.graphql_engine`` (``GRAPHQL_ENGINE``) picks the engine: ``tuned`` adds the
parts of ``schema._engine`` that replace strawberry's own behaviour (the
extension runner that skips stream hooks which cannot change a result, the
masking without a ``Protocol`` check, the validation cache keyed by document
object, subscription fan-out); ``plain`` runs strawberry's public behaviour
(its ``MaskErrors`` and ``ValidationCache`` through their public hooks). The WebSocket
handlers, the HTTP view's overrides and the overlap budget are on in both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import strawberry
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from domain.aggregate import Domain
from projections.projector import ReadSide
from schema._engine.extensions import TunedMaskErrors, TunedSchema
from schema._engine.fanout import encode_message
from schema._engine.http import HTTPView
from schema._engine.parking import ParkingExecutor
from schema._engine.validating import set_overlap_budget, validation_cache
from schema._engine.websockets import LegacyWSHandler, TransportWSHandler, WebSocketAdapter
from schema.auth import ANONYMOUS, AuthError, authenticate_header, authenticate_params
from schema.context import Catalog, Context, NodeReader
from schema.edge import EdgeGraphQL, SafeParserCache
from schema.errors import ClientError
from schema.graphql_http import GraphQLResponseMedia
from schema.ide import GraphiQLPageView
from schema.limits import OVERLAP_BUDGET, Limits, bounded_response, limit_extensions
from schema.masking import LedgerMaskErrors, LedgerSchema
from schema.operations import CoreMutation
from schema.persisted import PersistedQueryView
from schema.queries import CoreQuery
from schema.scalars import scalar_config
from schema.subscriptions import CoreSubscription

log = logging.getLogger(__name__)

CACHE_SIZE = 1024


def should_mask(error: GraphQLError) -> bool:
    """Mask (and log) errors that come from an unexpected exception."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError | ClientError):
        return False
    log.error(
        "unexpected error in %s: %s",
        ".".join(str(p) for p in error.path or ()) or "operation",
        original,
        exc_info=(type(original), original, original.__traceback__),
    )
    return True


ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]


@dataclass(frozen=True)
class Feature:
    """One feature of the service, registered once: each layer's part of it.

    - ``domain``: its aggregates (``domain.aggregate.Domain``), if it has any;
    - ``read_side``: its consumers, read views and live topics
      (``projections.projector.ReadSide``), if it has any;
    - ``query`` / ``mutation`` / ``subscription``: strawberry types whose fields
      ``build_schema`` composes into the root types (None: nothing to add);
    - ``types``: further GraphQL types to include that no field reaches;
    - ``nodes``: id prefix -> how ``node(id:)`` reads an id of that kind;
    - ``stream_documents``: id prefix -> the read model holding one document
      per stream of that kind (a query's ``consistency: {streamId, version}``).

    A module exporting ``FEATURE = Feature(...)`` is enabled by naming it in
    the ``FEATURES`` setting (``runtime.features``).
    """

    name: str
    domain: Domain | None = None
    read_side: ReadSide | None = None
    query: type | None = None
    mutation: type | None = None
    subscription: type | None = None
    types: tuple[type, ...] = ()
    nodes: Mapping[str, NodeReader] = field(default_factory=dict)
    stream_documents: Mapping[str, str] = field(default_factory=dict)


def catalog(features: Sequence[Feature], read_models: Sequence[str]) -> Catalog:
    """What generic resolvers need of ``features``; ``read_models``: the consumers
    a ``consistency: {position}`` waits for."""
    nodes: dict[str, NodeReader] = {}
    stream_documents: dict[str, str] = {}
    for feature in features:
        nodes.update(feature.nodes)
        stream_documents.update(feature.stream_documents)
    return Catalog(tuple(read_models), stream_documents, nodes)


def _root(name: str, mixins: Sequence[type | None], core: type) -> type:
    """One root type with the fields of ``mixins`` (in order), then ``core``'s."""
    bases = (*(mixin for mixin in mixins if mixin is not None), core)
    composed: type = strawberry.type(type(name, bases, {}))
    return composed


class CheckedValidationCache(ValidationCache):
    """strawberry's ``ValidationCache`` that leaves a document the limits refused alone.

    ``RequestLimits`` runs first and may set ``pre_execution_errors``;
    strawberry's cache would replace them with the validation result.
    """

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is None:
            yield from super().on_validate()
        else:
            yield


def build_schema(
    features: Sequence[Feature],
    limits: Limits | None = None,
    *,
    extensions: Sequence[ExtensionFactory] = (),
) -> strawberry.Schema:
    """The schema of ``features``; ``limits`` only change the extensions, not the SDL.

    ``extensions`` (classes or factories, e.g. the runtime's operation metrics)
    run outermost, before the schema's own (masking, caches, limits).
    """
    limits = limits or Limits()
    set_overlap_budget(OVERLAP_BUDGET)
    tuned = limits.graphql_engine == "tuned"
    masking = TunedMaskErrors if tuned else LedgerMaskErrors
    own: list[ExtensionFactory] = [
        partial(masking, should_mask_error=should_mask, hide_suggestions=not limits.introspection),
        partial(SafeParserCache, maxsize=CACHE_SIZE),
        *limit_extensions(limits),
        validation_cache(CACHE_SIZE) if tuned else partial(CheckedValidationCache, CACHE_SIZE),
    ]
    return (TunedSchema if tuned else LedgerSchema)(
        query=_root("Query", [f.query for f in features], CoreQuery),
        mutation=_root("Mutation", [f.mutation for f in features], CoreMutation),
        subscription=_root("Subscription", [f.subscription for f in features], CoreSubscription),
        types=[kind for feature in features for kind in feature.types],
        extensions=[*extensions, *own],
        config=scalar_config(),
        # Subscribers share results (schema._engine.fanout) and park when idle
        # (schema._engine.parking).
        execution_context_class=ParkingExecutor if tuned else None,
    )


class LedgerGraphQL(
    GraphiQLPageView, PersistedQueryView, GraphQLResponseMedia, EdgeGraphQL, HTTPView
):
    """Strawberry's ASGI app with per-request contexts and authentication.

    HTTP: the ``Authorization`` header is checked before anything runs; an
    invalid or expired token gets 401. WebSocket: the token is read from the
    ``connection_init`` params (``Authorization: "Bearer <jwt>"`` or
    ``token``); an invalid one closes the socket (4403 / 1011 by protocol).
    What a hostile client can send is handled by ``schema.edge`` and the
    protocol handlers of ``schema._engine.websockets``.
    """

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    # strawberry's own assignment of this attribute needs the same ignore: the
    # base class types it with generic Starlette WebSockets.
    websocket_adapter_class = WebSocketAdapter  # type: ignore[assignment]

    def __init__(
        self, schema: strawberry.Schema, base: Context, allowed_origins: Sequence[str] = ()
    ) -> None:
        limits = base.limits
        super().__init__(
            schema,
            graphql_ide="graphiql" if limits.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=limits.connection_init_timeout_seconds),
            max_subscriptions_per_connection=limits.max_subscriptions_per_connection,
            allowed_origins=allowed_origins,
        )
        self.base = base

    def encode_json(self, data: object) -> str | bytes:
        """A shared subscription result is encoded once for all subscribers.

        (``schema._engine.fanout``; with the plain engine nothing is shared.)

        A response (or WebSocket result) over ``MAX_RESPONSE_BYTES`` is replaced
        by a ``RESPONSE_TOO_LARGE`` error (``schema.limits.bounded_response``).
        """
        encoded = encode_message(data) or super().encode_json(data)
        return bounded_response(encoded, data, self.base.limits.max_response_bytes)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if isinstance(request, WebSocket):
            # Known after connection_init (on_ws_connect); dev mode needs no token.
            user = (
                await authenticate_params(self.base.auth, None)
                if self.base.auth.mode == "dev"
                else ANONYMOUS
            )
        else:
            try:
                header = request.headers.get("authorization")
                user = await authenticate_header(self.base.auth, header)
            except AuthError as exc:
                raise HTTPException(401, f"Unauthorized: {exc}") from exc
        return self.base.copy_for(user, request, response)

    async def on_ws_connect(self, context: Context) -> None:
        request = context.request
        header = request.headers.get("authorization") if request is not None else None
        try:
            params = context.connection_params
            context.user = await authenticate_params(context.auth, params, header)
        except AuthError as exc:
            raise ConnectionRejectionError({"message": f"Unauthorized: {exc}"}) from exc


def make_graphql_app(
    context: Context,
    schema: strawberry.Schema,
    *,
    allowed_origins: Sequence[str] = (),
) -> LedgerGraphQL:
    """The ASGI app serving ``/graphql`` (HTTP, GraphiQL, both WebSocket protocols).

    ``context`` is the process-wide template (services, auth, limits); its
    ``user`` is replaced per request. ``allowed_origins``: the other origins
    whose pages may open a WebSocket (``runtime/cors.py``).
    """
    return LedgerGraphQL(schema, context, allowed_origins)
