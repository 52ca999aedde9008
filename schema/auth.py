"""Who is asking, and what they may see or change.

Two modes (``AuthSettings.mode``):

- ``dev``: every request is the admin user "dev" (the service warns at start).
- ``jwt``: a bearer token, verified one of two ways:
  - with ``jwt_secret``: HS256 tokens signed with that shared secret (for
    development and tests); claims ``sub`` (the user, which is the account
    owner name), ``roles`` (a list; "admin" grants everything) and ``exp``
    (required);
  - with ``oidc``: access tokens of an OpenID Connect provider, verified with
    its published keys and mapped to a user by configurable claims
    (``schema.oidc``).

  A request without a token is anonymous and may see nothing; an expired or
  forged token is refused (HTTP 401, WebSocket close 4403) rather than
  downgraded to anonymous. A verified user carries the token's expiry, which
  ends a WebSocket session (``schema.sessions``).

Rules: users see and change only their own accounts and the transfers *from*
them (a transfer *to* them is visible too); admins see everything; the audit
log, other people's history and projection status are admin-only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import jwt

from schema.oidc import OidcVerifier, TokenError

ADMIN_ROLE = "admin"
MAX_TOKEN_CHARS = 16 * 1024  # longer bearer values are refused unparsed


@dataclass(frozen=True)
class User:
    """The caller. ``name`` is the owner name their accounts carry."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    authenticated: bool = True
    # The token's ``exp`` (epoch seconds); None when the session never expires (dev
    # mode, anonymous). Not part of equality: results shared between subscribers of
    # one user (``schema._engine.fanout``) do not depend on which token they came with.
    expires_at: float | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def owns(self, owner: str) -> bool:
        """Whether this user may see and change things belonging to ``owner``."""
        return self.is_admin or (self.authenticated and owner == self.name)


DEV_USER = User("dev", frozenset({ADMIN_ROLE}))
ANONYMOUS = User("", frozenset(), authenticated=False)


@dataclass(frozen=True)
class AuthSettings:
    """``mode`` "dev" or "jwt"; jwt mode needs exactly one of ``jwt_secret`` and ``oidc``.

    ``leeway_seconds`` is the clock skew allowed on ``exp`` and ``nbf``; a
    WebSocket session ends that long after its token's ``exp``.
    """

    mode: Literal["dev", "jwt"] = "dev"
    jwt_secret: str | None = None
    leeway_seconds: float = 0.0
    oidc: OidcVerifier | None = None

    def __post_init__(self) -> None:
        if self.mode == "jwt" and bool(self.jwt_secret) == (self.oidc is not None):
            raise ValueError("AUTH_MODE=jwt needs JWT_SECRET or an OIDC issuer (one of them)")


class AuthError(Exception):
    """A presented credential is invalid (forged, expired, malformed)."""


def user_from_token(settings: AuthSettings, token: str) -> User:
    """Verify ``token`` (HS256) and return its user; raise ``AuthError`` if invalid."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret or "",
            algorithms=["HS256"],
            options={"require": ["sub", "exp"]},
            leeway=settings.leeway_seconds,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("invalid token") from exc
    sub, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(sub, str) or not sub or not isinstance(roles, list):
        raise AuthError("invalid token claims")
    return User(sub, frozenset(str(role) for role in roles), expires_at=float(claims["exp"]))


async def verify_token(settings: AuthSettings, token: str) -> User:
    """The user ``token`` speaks for (HS256 or OIDC per ``settings``); ``AuthError`` if none."""
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("invalid token")
    if settings.oidc is None:
        return user_from_token(settings, token)
    try:
        identity = await settings.oidc.verify(token, settings.leeway_seconds)
    except TokenError as exc:
        raise AuthError(str(exc)) from exc
    # The provider's roles, except that only its admin role makes an admin here.
    roles = identity.roles - {ADMIN_ROLE} | ({ADMIN_ROLE} if identity.admin else set())
    return User(identity.name, frozenset(roles), expires_at=identity.expires_at)


def session_expired(settings: AuthSettings, user: User, now: float | None = None) -> bool:
    """Whether ``user``'s token has expired (past ``exp`` plus the leeway) at ``now``."""
    if user.expires_at is None:
        return False
    return (time.time() if now is None else now) >= user.expires_at + settings.leeway_seconds


def bearer_token(value: object) -> str | None:
    """The token in ``Bearer <token>`` (or a bare token); None when absent."""
    if not isinstance(value, str) or not value.strip():
        return None
    scheme, _, rest = value.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip()
    if not rest:
        return scheme
    raise AuthError("unsupported authorization scheme")


async def authenticate_header(settings: AuthSettings, authorization: str | None) -> User:
    """The user for an HTTP request's ``Authorization`` header."""
    if settings.mode == "dev":
        return DEV_USER
    token = bearer_token(authorization)
    return ANONYMOUS if token is None else await verify_token(settings, token)


async def authenticate_params(
    settings: AuthSettings, params: Mapping[str, object] | None, header: str | None = None
) -> User:
    """The user for a WebSocket: its connection params, else the upgrade request's header.

    A token is required in jwt mode: an anonymous socket is refused.
    """
    if settings.mode == "dev":
        return DEV_USER
    params = params if isinstance(params, Mapping) else {}
    raw = params.get("Authorization", params.get("authorization", params.get("token")))
    token = bearer_token(raw) or bearer_token(header)
    if token is None:
        raise AuthError("missing token")
    return await verify_token(settings, token)
