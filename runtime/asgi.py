"""The service's ASGI shell: its Starlette app, and the GraphQL slot filled at start-up.

``service_app`` lays out the routes (``/healthz``, ``/readyz``, ``/metrics``,
``/graphql`` over HTTP and WebSocket), the runtime middleware and CORS
(``runtime/cors.py``).

``LateApp`` is an ASGI endpoint whose app is set later, once the lifespan has built it.

Routes are fixed when the Starlette app is created, but the GraphQL app needs
the database, stores and consumers that only exist after start-up. uvicorn
serves no request before the lifespan's start-up finishes, so in practice the
slot is always filled; until then it answers 503 (HTTP) or closes 1013
("try again later", WebSocket).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime import graphiql
from runtime.components import Monitoring
from runtime.cors import cors_middleware
from runtime.health import health_routes
from runtime.metrics import metrics_route
from runtime.middleware import RuntimeMiddleware
from runtime.settings import Settings


class LateApp:
    """Forwards to ``app`` once it is set."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
        else:
            body = b'{"errors":[{"message":"service is starting"}]}'
            await send({
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": body})


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
        Route("/graphql", graphql),
        WebSocketRoute("/graphql", graphql),
        *health_routes(health, token),
        # GraphiQL's own files, when fetched at build time (runtime/graphiql.py).
        *(graphiql.asset_routes(settings.graphiql_assets_dir) if settings.graphiql_enabled else ()),
        metrics_route(metrics, monitoring.refreshers, token),
    ]
    # Outermost first: request ids, counts and the body limit see every request,
    # preflights included; CORS answers preflights and marks cross-origin responses.
    middleware = [
        Middleware(RuntimeMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes),
        *cors_middleware(settings),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings, app.state.metrics, app.state.health = settings, metrics, health
    return app
