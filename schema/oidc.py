"""Access tokens from an OpenID Connect provider, verified with its published keys (JWKS).

``OidcVerifier.verify(token, leeway)`` checks an access token the way a
resource server must: the signature with one of the provider's public keys
(found by the token's ``kid``), an algorithm from the configured asymmetric
allow-list that is also the key's own algorithm (never ``none``, never HS*),
``iss`` equal to the configured issuer, ``aud`` containing the audience,
``exp`` (required) and ``nbf`` with a small leeway. It returns the caller's
``Identity`` from configurable claims; it raises ``TokenError`` otherwise.

``JwksKeys`` holds the provider's key set, fetched through discovery
(``<issuer>/.well-known/openid-configuration`` -> ``jwks_uri``) or from a
configured ``jwks_url``. Contracts:

- The event loop never blocks on the provider: fetches run in a worker thread
  with a socket timeout and an overall deadline, bodies are capped in size.
- At most one fetch runs at a time, and a fetch starts at most once per
  ``refetch_interval_seconds`` (counted from the previous start), whatever
  causes it: the cache lifetime running out, a token with an unknown ``kid``,
  readiness probes. A flood of tokens with made-up ``kid``s therefore costs
  the provider at most one request per interval, and is refused without
  waiting once the interval's fetch is spent.
- The cache lifetime is the provider's ``Cache-Control: max-age``, or
  ``cache_seconds`` without one, bounded to [refetch interval, one day]. A
  key set that has expired keeps serving while a refresh runs in the
  background; a failed refresh keeps the last good keys and is reported by
  ``status()`` (``/readyz`` and metrics read it).
- State is bounded: at most ``MAX_KEYS`` keys, one in-flight fetch, a few
  counters. Nothing is remembered per token or per ``kid`` asked for.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)

SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
MAX_DOCUMENT_BYTES = 256 * 1024  # a discovery document or key set larger than this is refused
MAX_KEYS = 64  # keys kept from one key set; real providers publish a handful
MAX_CACHE_SECONDS = 86_400.0
DISCOVERY_PATH = "/.well-known/openid-configuration"
_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show the client."""


class KeyFetchError(Exception):
    """The provider's discovery document or key set could not be fetched or read."""


def is_acceptable_url(url: str) -> bool:
    """``https://...``, or ``http://`` to a loopback host (local providers and tests)."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        return False
    if parsed.scheme == "https":
        return True
    if parsed.scheme != "http":
        return False
    if parsed.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcSettings:
    """Which provider to trust, and how its claims map to a user.

    ``issuer`` is compared with ``iss`` exactly (Auth0's ends with "/").
    ``jwks_url`` skips discovery. ``roles_claim`` is a top-level claim name
    (namespaced URLs such as Auth0's included) or a dotted path into nested
    objects (Keycloak's ``realm_access.roles``); its value is a list of
    strings or one space-separated string. ``admin_role`` is the provider's
    role that makes a user an admin here.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    user_claim: str = "sub"
    roles_claim: str = "roles"
    admin_role: str = "admin"
    cache_seconds: float = 300.0
    refetch_interval_seconds: float = 60.0
    fetch_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        unsupported = set(self.algorithms) - SUPPORTED_ALGORITHMS
        if not self.algorithms or unsupported:
            raise ValueError(
                f"OIDC algorithms must be some of {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
            )
        for url in (self.issuer, self.jwks_url):
            if url is not None and not is_acceptable_url(url):
                raise ValueError(f"{url!r} must be https (http only on a loopback host)")
        if not self.audience:
            raise ValueError("an OIDC audience is required")

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + DISCOVERY_PATH


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for. ``expires_at``: its ``exp`` (epoch seconds)."""

    name: str
    roles: frozenset[str]
    admin: bool
    expires_at: float


@dataclass(frozen=True)
class KeySetStatus:
    """What ``/readyz`` and the metrics report about the key set.

    ``age_seconds``: time since the last successful fetch (None: never);
    ``last_error``: why the latest fetch failed (None when it succeeded).
    """

    keys: int
    age_seconds: float | None
    last_error: str | None
    fetches_ok: int
    fetches_failed: int
    unknown_kid_refused: int


# -- fetching (blocking; always run in a worker thread) -------------------------------


class _SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs this module would accept in the first place."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not is_acceptable_url(newurl):
            raise KeyFetchError(f"refused redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameSchemeRedirects)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)

JsonFetch = Callable[[str, float], tuple[object, float | None]]


def cache_lifetime(cache_control: str | None) -> float | None:
    """Seconds a response may be cached per its ``Cache-Control`` (None: not said)."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def fetch_json(url: str, timeout: float) -> tuple[object, float | None]:
    """GET ``url`` as JSON within ``timeout`` seconds overall; (document, max-age or None)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = bytearray()
            while chunk := response.read1(64 * 1024):
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeyFetchError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise KeyFetchError(f"{url}: no complete answer within {timeout}s")
            max_age = cache_lifetime(response.headers.get("Cache-Control"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise KeyFetchError(f"{url}: {error}") from error
    try:
        return json.loads(body), max_age
    except ValueError as error:
        raise KeyFetchError(f"{url}: not JSON") from error


# -- the key set -----------------------------------------------------------------------


def parse_key_set(document: object, algorithms: tuple[str, ...]) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS document by ``kid``.

    A key is used only with its own algorithm (its ``alg``, else the one its
    type and curve imply), and only when that algorithm is allowed:
    symmetric (``oct``) keys, encryption keys and keys without ``kid`` are
    skipped. Raises ``KeyFetchError`` when no key is usable.
    """
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise KeyFetchError("the key set has no 'keys' list")
    keys: dict[str, PyJWK] = {}
    for entry in entries:
        if len(keys) >= MAX_KEYS:
            break
        if not isinstance(entry, dict) or entry.get("kty") not in _ASYMMETRIC_KEY_TYPES:
            continue
        kid, use = entry.get("kid"), entry.get("use", "sig")
        if not isinstance(kid, str) or not kid or use != "sig" or kid in keys:
            continue
        try:
            key = PyJWK(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in algorithms:
            keys[kid] = key
    if not keys:
        raise KeyFetchError("the key set holds no usable signing key")
    return keys


class JwksKeys:
    """The provider's signing keys, cached and refreshed (see the module docstring).

    ``fetch`` (url, timeout) -> (JSON document, max-age) runs in a worker
    thread; ``clock`` is monotonic seconds. Both are parameters for tests.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        fetch: JsonFetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._fetch, self._clock = fetch, clock
        self._keys: dict[str, PyJWK] = {}
        self._jwks_url = settings.jwks_url
        self._expires = 0.0
        self._last_start: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._fetched_at: float | None = None
        self._last_error: str | None = None
        self._ok = self._failed = self._refused = 0

    def status(self) -> KeySetStatus:
        fetched_at = self._fetched_at
        return KeySetStatus(
            len(self._keys),
            None if fetched_at is None else max(self._clock() - fetched_at, 0.0),
            self._last_error,
            self._ok,
            self._failed,
            self._refused,
        )

    async def key(self, kid: str) -> PyJWK:
        """The key ``kid``; raise ``TokenError`` when the provider has no such key."""
        key = self._keys.get(kid)
        if key is not None:
            if self._clock() >= self._expires:
                self._start_fetch()  # stale keys keep serving meanwhile
            return key
        if self._inflight is None and not self._start_fetch():
            self._refused += 1
            raise TokenError("unknown signing key")
        await self._wait_for_fetch()
        key = self._keys.get(kid)
        if key is None:
            raise TokenError("unknown signing key")
        return key

    async def refresh(self) -> None:
        """Fetch now if the interval allows (else join the running fetch, if any); never raises."""
        self._start_fetch()
        await self._wait_for_fetch()

    def _start_fetch(self) -> bool:
        """Start a fetch unless one runs or the interval since the last start has not passed."""
        now = self._clock()
        interval = self.settings.refetch_interval_seconds
        if self._inflight is not None:
            return False
        if self._last_start is not None and now - self._last_start < interval:
            return False
        self._last_start = now
        self._inflight = asyncio.get_running_loop().create_task(self._fetch_key_set())
        return True

    async def _wait_for_fetch(self) -> None:
        task = self._inflight
        if task is not None:
            # shield: a caller that gives up (a timeout, a client gone) does not cancel
            # the fetch every other waiter shares.
            await asyncio.shield(task)

    async def _fetch_key_set(self) -> None:
        try:
            keys, jwks_url, max_age = await asyncio.to_thread(self._load, self._jwks_url)
        except Exception as error:  # any failure keeps the cached keys, and is reported
            self._failed += 1
            self._last_error = str(error)
            if self.settings.jwks_url is None:
                self._jwks_url = None  # discover again next time: the jwks_uri may have moved
            log.warning("JWKS fetch failed, %d cached keys kept: %s", len(self._keys), error)
        else:
            lifetime = self.settings.cache_seconds if max_age is None else max_age
            lifetime = min(max(lifetime, self.settings.refetch_interval_seconds), MAX_CACHE_SECONDS)
            self._keys, self._jwks_url = keys, jwks_url
            self._expires = self._clock() + lifetime
            self._fetched_at, self._last_error = self._clock(), None
            self._ok += 1
        finally:
            self._inflight = None

    def _load(self, jwks_url: str | None) -> tuple[dict[str, PyJWK], str, float | None]:
        """Discovery (unless the key set's URL is known), then the key set. Blocking."""
        timeout = self.settings.fetch_timeout_seconds
        if jwks_url is None:
            jwks_url = self._discover(timeout)
        document, max_age = self._fetch(jwks_url, timeout)
        return parse_key_set(document, self.settings.algorithms), jwks_url, max_age

    def _discover(self, timeout: float) -> str:
        document, _ = self._fetch(self.settings.discovery_url, timeout)
        if not isinstance(document, Mapping):
            raise KeyFetchError("the discovery document is not a JSON object")
        if document.get("issuer") != self.settings.issuer:
            raise KeyFetchError(
                f"the discovery document names issuer {document.get('issuer')!r},"
                f" not {self.settings.issuer!r}"
            )
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not is_acceptable_url(url):
            raise KeyFetchError(f"unusable jwks_uri {url!r}")
        return url


# -- verification ----------------------------------------------------------------------


def claim_at(claims: Mapping[str, object], path: str) -> object:
    """The claim named ``path``, else the value at the dotted ``path``; None if absent."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class OidcVerifier:
    """Verifies access tokens of one provider (``settings``) with its ``keys``."""

    def __init__(self, settings: OidcSettings, keys: JwksKeys | None = None) -> None:
        self.settings = settings
        self.keys = keys or JwksKeys(settings)

    async def verify(self, token: str, leeway: float = 0.0) -> Identity:
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in settings.algorithms:
            raise TokenError("token algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        key = await self.keys.key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        return self._identity(claims)

    def _identity(self, claims: Mapping[str, object]) -> Identity:
        name = claim_at(claims, self.settings.user_claim)
        raw_roles = claim_at(claims, self.settings.roles_claim)
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        elif raw_roles is None:
            raw_roles = []
        if not isinstance(name, str) or not name or not isinstance(raw_roles, list):
            raise TokenError("invalid token claims")
        roles = frozenset(role for role in raw_roles if isinstance(role, str))
        exp = claims["exp"]
        assert isinstance(exp, int | float)  # PyJWT checked it is a number
        return Identity(name, roles, self.settings.admin_role in roles, float(exp))
