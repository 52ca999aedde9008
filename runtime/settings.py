"""Every setting of the service, read once from the environment (and an optional .env).

``load_settings()`` is the only entry point the rest of the service uses; it
turns pydantic's validation errors into one readable ``SettingsError`` naming
each bad variable. Variables are upper case (``PORT=9000``); names are
case-insensitive. Defaults suit a developer's laptop: the embedded database
under ``DATA_DIR``, ``AUTH_MODE=dev``, GraphiQL on. ``APP_ENV=production``
refuses to start unless a real database and JWT auth are configured, and turns
GraphiQL and introspection off unless they are switched on explicitly.
``configuration_problems`` holds the rules across settings; ``limits_from``,
``auth_from`` and ``persisted_from`` turn the settings into the GraphQL API's objects.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schema.auth import AuthSettings
from schema.limits import Limits
from schema.oidc import SUPPORTED_ALGORITHMS, OidcSettings, OidcVerifier, is_acceptable_url
from schema.persisted import PersistedQueries

__all__ = [
    "LOG_LEVELS",
    "MIN_JWT_SECRET_LENGTH",
    "Settings",
    "SettingsError",
    "load_settings",
    "redact_url",
    "settings_table",
]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_JWT_SECRET_LENGTH = 32
DEV_CORS_ORIGINS = tuple(
    f"http://{host}:{port}"
    for port in (3000, 4173, 4200, 5173, 8080)  # React/Next, Vite preview, Angular, Vite, Vue CLI
    for host in ("localhost", "127.0.0.1")
)
"""The usual local dev-server origins, allowed by default outside production."""
_ORIGIN = re.compile(r"^https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$", re.IGNORECASE)


class SettingsError(ValueError):
    """The environment holds an invalid or incomplete configuration."""


class Settings(BaseSettings):
    """The service configuration. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    # Where the service listens.
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in containers).")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-* headers are trusted (`*`: any)."
    )
    shutdown_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Longest stop after SIGTERM (requests in flight get half); then exit 1.",
    )

    # Storage.
    app_env: Literal["development", "production"] = Field(
        "development", description="`production` enforces the checks below and safer defaults."
    )
    data_dir: Path = Field(Path(".data"), description="Where the embedded database keeps data.")
    mongodb_url: SecretStr | None = Field(
        None, description="MongoDB connection string; unset: embedded nx-27017 under DATA_DIR."
    )
    mongodb_database: str = Field(
        "ledger", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="Database name."
    )
    mongodb_connect_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="How long start-up waits for MONGODB_URL to answer."
    )
    store: Literal["mongo", "memory"] = Field(
        "mongo",
        description="`memory`: in-process stores for tests and benchmarks (no persistence).",
    )
    snapshot_every: int = Field(
        20, ge=1, le=1_000_000, description="Snapshot an aggregate every N events."
    )

    # Auth and exposure.
    auth_mode: Literal["dev", "jwt"] = Field(
        "dev",
        description="`dev`: everyone is admin user 'dev'; `jwt`: bearer tokens (HS256 with "
        "JWT_SECRET, or an OIDC provider's with OIDC_ISSUER).",
    )
    jwt_secret: SecretStr | None = Field(
        None, description=f"HS256 key for AUTH_MODE=jwt, at least {MIN_JWT_SECRET_LENGTH} chars."
    )
    jwt_leeway_seconds: float = Field(
        10.0, ge=0, le=300, description="Clock skew allowed on a token's `exp` and `nbf`."
    )
    # An OIDC provider instead of JWT_SECRET (schema/oidc.py, docs/security.md).
    oidc_issuer: str | None = Field(
        None,
        description="OIDC provider for AUTH_MODE=jwt: its issuer URL, compared with `iss` "
        "exactly; keys found through its discovery document.",
    )
    oidc_audience: str | None = Field(
        None, description="The `aud` access tokens must carry (the API's id at the provider)."
    )
    jwks_url: str | None = Field(
        None, description="The provider's key set URL: skips discovery (OIDC_ISSUER still needed)."
    )
    oidc_algorithms: str = Field(
        "RS256,ES256,EdDSA", description="Accepted token algorithms, comma-separated, asymmetric."
    )
    oidc_user_claim: str = Field("sub", description="Claim naming the user (the accounts' owner).")
    oidc_roles_claim: str = Field(
        "roles",
        description="Claim holding the roles: a name (Auth0: a namespaced claim) or a dotted "
        "path (Keycloak: `realm_access.roles`).",
    )
    oidc_admin_role: str = Field(
        "admin", description="The provider's role that makes a user an admin here."
    )
    jwks_cache_seconds: float = Field(
        300.0, gt=0, le=86_400, description="Key cache lifetime when the provider sends no max-age."
    )
    jwks_refetch_interval_seconds: float = Field(
        60.0, gt=0, le=3_600, description="Least time between key fetches (unknown `kid`s too)."
    )
    jwks_fetch_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Time limit of one discovery or key-set fetch."
    )
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL at /graphql (default: on, off in production)."
    )
    introspection: bool | None = Field(
        None, description="Allow schema introspection (default: on, off in production)."
    )
    graphql_engine: Literal["tuned", "plain"] = Field(
        "tuned",
        description="`tuned`: the schema's engine over strawberry internals (schema/_engine); "
        "`plain`: strawberry's own public behaviour (see UPGRADING.md).",
    )
    websocket_protocol: Literal["lean", "uvicorn"] = Field(
        "lean",
        description="`lean`: uvicorn's sans-io WebSocket protocol keeping less per idle "
        "connection (runtime/websocket_edge.py); `uvicorn`: uvicorn's own (see UPGRADING.md).",
    )
    persisted_queries: Literal["apq", "trusted", "off"] = Field(
        "apq",
        description="`apq`: automatic persisted queries (bounded store); `trusted`: only the "
        "documents of TRUSTED_DOCUMENTS_FILE run; `off`: refused (schema/persisted.py).",
    )
    trusted_documents_file: Path | None = Field(
        None, description="Manifest of trusted documents (JSON; see the README's Frontends)."
    )
    apq_max_entries: int = Field(
        1_000, ge=1, le=1_000_000, description="Documents the APQ store keeps (LRU)."
    )
    apq_max_document_bytes: int = Field(
        20_000, ge=100, le=10_000_000, description="Largest document the APQ store keeps."
    )
    graphiql_assets_dir: Path = Field(
        Path(__file__).resolve().parents[1] / ".cache" / "graphiql",
        description="GraphiQL's files fetched at build time (`make graphiql-assets`); "
        "missing files load from the CDN.",
    )

    # Browser frontends on other origins (runtime/cors.py).
    cors_origins: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Origins (`scheme://host[:port]`, comma-separated) whose pages may call the "
        "API over HTTP and WebSocket; `*` (any) only outside production (default: local dev "
        "servers, none in production).",
    )
    cors_allow_credentials: bool = Field(
        False, description="Let those pages send cookies (CORS credentials)."
    )
    cors_allow_headers: Annotated[list[str], NoDecode] = Field(
        ["Authorization", "Content-Type", "X-Request-ID", "traceparent"],
        description="Request headers cross-origin pages may send (comma-separated).",
    )

    # Logs.
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: Literal["json", "text"] | None = Field(
        None, description="`json` lines or readable `text` (default: json in production)."
    )

    # GraphQL limits.
    max_query_depth: int = Field(15, ge=1, le=100, description="Deepest selection nesting.")
    max_aliases: int = Field(30, ge=1, le=10_000, description="Aliases per document.")
    max_tokens: int = Field(2_000, ge=10, le=1_000_000, description="Tokens per document.")
    max_page_size: int = Field(100, ge=1, le=10_000, description="Largest `first` of a page.")
    max_subscriptions_per_connection: int = Field(
        20, ge=1, le=10_000, description="Concurrent subscriptions on one WebSocket."
    )
    connection_init_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="Time a WebSocket has to send connection_init."
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1_024, le=100_000_000, description="Largest HTTP body / WebSocket message."
    )
    consistency_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Longest wait of a read-your-writes query."
    )
    max_query_cost: int = Field(
        10_000,
        ge=1,
        le=100_000_000,
        description="Largest query cost (values a response can hold plus events replayed); "
        "over it: QUERY_TOO_COSTLY.",
    )
    max_response_bytes: int = Field(
        1_000_000,
        ge=1_024,
        le=1_000_000_000,
        description="Largest serialized GraphQL response; over it: RESPONSE_TOO_LARGE.",
    )
    request_timeout_seconds: float = Field(
        8.0,
        gt=0,
        le=300,
        description="Time a query or mutation may take (keep it above "
        "CONSISTENCY_TIMEOUT_SECONDS); then UNAVAILABLE or TIMEOUT.",
    )

    # The HTTP edge (runtime/http_edge.py) and what anonymous callers see (docs/security.md).
    max_header_bytes: int = Field(
        16_384, ge=1_024, le=1_048_576, description="Largest request line plus headers (431)."
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Time a client has to send a request's headers (408)."
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="Time a client has to send a request's body (408)."
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token that /metrics and /readyz details need; unset: open."
    )
    metrics_operation_names: str = Field(
        "",
        description="GraphQL operation names /metrics labels by name, comma-separated; "
        "other operations are labelled by their root field.",
    )

    # What the service is made of.
    features: str = Field(
        "schema.accounts,schema.transfers,schema.ledger",
        description="The features served: import paths of modules exporting FEATURE, "
        "comma-separated (runtime/features.py).",
    )

    # Background work: leases and polling.
    lease_ttl_seconds: float = Field(
        10.0, gt=0, le=600, description="Lease of the sequencer and each consumer (takeover time)."
    )
    poll_interval_seconds: float = Field(
        0.2, gt=0, le=60, description="How often consumers look for events from other processes."
    )
    clock_skew_seconds: float = Field(
        0.0,
        ge=-3600,
        le=3600,
        description="Tests only: shift this process's wall clock (refused in production).",
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """``FOO=`` in a .env or compose file means "use the default", not "empty"."""
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("cors_origins", "cors_allow_headers", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``CORS_ORIGINS=a,b`` (or a JSON list) from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        """Each origin as browsers send it: lower case, no default port (compared exactly)."""
        if value is None:
            return None
        origins: list[str] = []
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not `*` nor an origin scheme://host[:port]")
            origin = origin.lower()
            origins.append(re.sub(r":80$" if origin.startswith("http:") else r":443$", "", origin))
        return origins

    @field_validator("mongodb_url")
    @classmethod
    def _mongodb_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^mongodb(\+srv)?://", value.get_secret_value()):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        problems = configuration_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Resolved values: what the rest of the service reads.

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def uses_embedded_database(self) -> bool:
        """True when the service starts its own nx-27017 under ``data_dir``."""
        return self.store == "mongo" and self.mongodb_url is None

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def effective_cors_origins(self) -> tuple[str, ...]:
        """The origins whose pages may use the API (HTTP and WebSocket)."""
        if self.cors_origins is not None:
            return tuple(self.cors_origins)
        return () if self.is_production else DEV_CORS_ORIGINS

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "text"

    @property
    def effective_log_level(self) -> str:
        return self.log_level

    def mongodb_url_value(self) -> str | None:
        """The configured database URL in clear (it may hold a password: never log it)."""
        return self.mongodb_url.get_secret_value() if self.mongodb_url else None

    def jwt_secret_value(self) -> str | None:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else None

    @property
    def oidc_algorithm_list(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.oidc_algorithms.split(",") if a.strip())

    def describe(self) -> dict[str, object]:
        """The effective settings without secrets, for the start-up log line."""
        url = self.mongodb_url_value()
        return {
            "app_env": self.app_env,
            "host": self.host,
            "port": self.port,
            "store": self.store,
            "database": "embedded nx-27017" if self.uses_embedded_database else redact_url(url),
            "mongodb_database": self.mongodb_database,
            "data_dir": str(self.data_dir),
            "auth_mode": self.auth_mode,
            "oidc_issuer": self.oidc_issuer,
            "graphiql": self.graphiql_enabled,
            "introspection": self.introspection_enabled,
            "cors_origins": list(self.effective_cors_origins),
            "log_format": self.effective_log_format,
        }


def settings_table() -> str:
    """Every variable with its default and meaning, as a Markdown table (for the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = "unset" if info.default is None else f"`{info.default}`"
        rows.append(f"| `{name.upper()}` | {default} | {info.description} |")
    return "\n".join(rows)


def redact_url(url: str | None) -> str | None:
    """``mongodb://user:pw@host`` -> ``mongodb://user:***@host``."""
    if url is None:
        return None
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read the settings; raise ``SettingsError`` with one line per problem.

    ``overrides`` take precedence over the environment (used by tests and the CLI);
    a name that is not a setting is a ``TypeError``, not silently dropped.
    """
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"not settings: {', '.join(unknown)}")
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None


def _explain(error: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for item in error.errors():
        name = "_".join(str(part) for part in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        if name:
            lines.append(f"  {name}: {message}")
        else:
            lines.extend(f"  {part}" for part in message.split("; "))
    return "\n".join(lines)


# -- rules over several settings together ---------------------------------------------
# Each field is validated on its own above; these look at several together: JWT auth
# needs a long enough secret or an OIDC provider (with an audience, over https), and
# ``APP_ENV=production`` needs a real database, the Mongo store and JWT auth.


def configuration_problems(settings: Settings) -> list[str]:
    """One readable line per broken rule; empty when the settings may start the service."""
    return [
        *_auth_problems(settings),
        *_persisted_problems(settings),
        *_production_problems(settings),
    ]


def _auth_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    oidc = settings.oidc_issuer is not None
    if settings.auth_mode == "jwt" and oidc and settings.jwt_secret is not None:
        problems.append("AUTH_MODE=jwt takes JWT_SECRET or OIDC_ISSUER, not both")
    elif settings.auth_mode == "jwt" and not oidc and not _secret_long_enough(settings):
        problems.append(
            f"AUTH_MODE=jwt needs JWT_SECRET of at least {MIN_JWT_SECRET_LENGTH} characters"
            " or OIDC_ISSUER"
        )
    return [*problems, *_oidc_problems(settings)]


def _oidc_problems(settings: Settings) -> list[str]:
    if settings.oidc_issuer is None and settings.jwks_url is None:
        return []
    problems: list[str] = []
    if settings.oidc_issuer is None:
        problems.append("JWKS_URL needs OIDC_ISSUER (the `iss` tokens must carry)")
    if not settings.oidc_audience:
        problems.append("OIDC_ISSUER needs OIDC_AUDIENCE (the `aud` tokens must carry)")
    for name, url in (("OIDC_ISSUER", settings.oidc_issuer), ("JWKS_URL", settings.jwks_url)):
        if url is not None and not is_acceptable_url(url):
            problems.append(f"{name} must be an https URL (http only on a loopback host)")
    algorithms = settings.oidc_algorithm_list
    if not algorithms or not set(algorithms) <= SUPPORTED_ALGORITHMS:
        supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        problems.append(f"OIDC_ALGORITHMS must be some of {supported}")
    return problems


def _persisted_problems(settings: Settings) -> list[str]:
    if settings.persisted_queries == "trusted" and settings.trusted_documents_file is None:
        return ["PERSISTED_QUERIES=trusted needs TRUSTED_DOCUMENTS_FILE (the manifest)"]
    return []


def _production_problems(settings: Settings) -> list[str]:
    if settings.app_env != "production":
        return []
    problems: list[str] = []
    if settings.mongodb_url is None:
        problems.append(
            "APP_ENV=production needs MONGODB_URL (the embedded database is for development)"
        )
    if settings.store != "mongo":
        problems.append("APP_ENV=production needs STORE=mongo")
    secret = settings.jwt_secret_value()
    if secret is not None and not secret_looks_random(secret):
        problems.append(
            "APP_ENV=production refuses a guessable JWT_SECRET (repeated or too few distinct "
            "characters), generate one with e.g. `openssl rand -base64 48`"
        )
    if settings.auth_mode != "jwt":
        # A short JWT_SECRET with AUTH_MODE=jwt is reported by _auth_problems.
        problems.append("APP_ENV=production needs AUTH_MODE=jwt (and JWT_SECRET or OIDC_ISSUER)")
    if settings.cors_origins is not None and "*" in settings.cors_origins:
        problems.append("APP_ENV=production refuses CORS_ORIGINS=* (list the frontends' origins)")
    if settings.clock_skew_seconds:
        problems.append("APP_ENV=production refuses CLOCK_SKEW_SECONDS (a test setting)")
    return problems


def _secret_long_enough(settings: Settings) -> bool:
    secret = settings.jwt_secret_value() or ""
    return len(secret) >= MIN_JWT_SECRET_LENGTH


def secret_looks_random(secret: str) -> bool:
    """False for a secret with too little entropy to be a key, however long.

    A heuristic against the obvious (``aaaa...``, ``changemechangeme...``,
    ``0123456789abcdef0123...``), not a proof of randomness: at least 80 bits
    by the Shannon entropy of its characters, and at least three quarters of
    its 3-character windows distinct (a repeated unit fails that).
    """
    if len(secret) < 3:
        return False
    counts: dict[str, int] = {}
    for char in secret:
        counts[char] = counts.get(char, 0) + 1
    size = len(secret)
    bits = -sum(n / size * math.log2(n / size) for n in counts.values()) * size
    windows = {secret[i : i + 3] for i in range(size - 2)}
    return bits >= 80 and len(windows) >= 0.75 * (size - 2)


# -- the GraphQL API's settings objects, taken from the service settings --------------


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
        graphql_engine=settings.graphql_engine,
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
