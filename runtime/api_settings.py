"""The GraphQL API's settings objects, taken from the service ``Settings``."""

from __future__ import annotations

from runtime.settings import Settings
from schema.auth import AuthSettings
from schema.limits import Limits


def limits_from(settings: Settings) -> Limits:
    """The query, page, body and subscription limits the schema enforces."""
    return Limits(
        max_query_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_page_size=settings.max_page_size,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        connection_init_timeout_seconds=settings.connection_init_timeout_seconds,
        max_body_bytes=settings.max_body_bytes,
        consistency_timeout_seconds=settings.consistency_timeout_seconds,
        max_query_cost=settings.max_query_cost,
        max_response_bytes=settings.max_response_bytes,
        request_timeout_seconds=settings.request_timeout_seconds,
        introspection=settings.introspection_enabled,
        graphiql=settings.graphiql_enabled,
    )


def auth_from(settings: Settings) -> AuthSettings:
    """How requests are authenticated (``AUTH_MODE``, ``JWT_SECRET``)."""
    return AuthSettings(mode=settings.auth_mode, jwt_secret=settings.jwt_secret_value())
