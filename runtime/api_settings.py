"""The GraphQL API's settings objects, taken from the service ``Settings``."""

from __future__ import annotations

from runtime.settings import Settings
from schema.auth import AuthSettings
from schema.limits import Limits
from schema.oidc import OidcSettings, OidcVerifier
from schema.persisted import PersistedQueries


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


def persisted_from(settings: Settings) -> PersistedQueries:
    """How persisted queries are treated (``PERSISTED_QUERIES``); loads the trusted manifest."""
    if settings.persisted_queries == "trusted":
        assert settings.trusted_documents_file is not None  # the settings rules require it
        return PersistedQueries.trusted_only(settings.trusted_documents_file)
    if settings.persisted_queries == "off":
        return PersistedQueries("off")
    return PersistedQueries.automatic(settings.apq_max_entries, settings.apq_max_document_bytes)


def auth_from(settings: Settings) -> AuthSettings:
    """How requests are authenticated (``AUTH_MODE``, ``JWT_SECRET`` or ``OIDC_*``)."""
    oidc = None
    if settings.auth_mode == "jwt" and settings.oidc_issuer is not None:
        oidc = OidcVerifier(oidc_from(settings))
    return AuthSettings(
        mode=settings.auth_mode,
        jwt_secret=None if oidc else settings.jwt_secret_value(),
        leeway_seconds=settings.jwt_leeway_seconds,
        oidc=oidc,
    )


def oidc_from(settings: Settings) -> OidcSettings:
    """The OIDC provider's settings; ``OIDC_ISSUER`` and ``OIDC_AUDIENCE`` must be set."""
    assert settings.oidc_issuer is not None
    assert settings.oidc_audience is not None
    return OidcSettings(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.jwks_url,
        algorithms=settings.oidc_algorithm_list,
        user_claim=settings.oidc_user_claim,
        roles_claim=settings.oidc_roles_claim,
        admin_role=settings.oidc_admin_role,
        cache_seconds=settings.jwks_cache_seconds,
        refetch_interval_seconds=settings.jwks_refetch_interval_seconds,
        fetch_timeout_seconds=settings.jwks_fetch_timeout_seconds,
    )
