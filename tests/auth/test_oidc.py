"""OIDC access tokens verified with the provider's JWKS, against a loopback provider.

The key-fetch intervals run on a manual monotonic clock (a test double of the
clock, not of our code); everything else, HTTP included, is real.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from runtime.health import jwks_check
from runtime.metrics import Metrics
from runtime.probes import jwks_refresher
from schema.auth import AuthError, AuthSettings, User, verify_token
from schema.oidc import MAX_KEYS, JwksKeys, KeyFetchError, OidcSettings, OidcVerifier, parse_key_set
from tests.auth.idp import AUDIENCE, IdP, new_private_key, public_jwk


class Clock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def oidc_auth(
    idp: IdP, clock: Clock | None = None, *, leeway: float = 0.0, **overrides: Any
) -> AuthSettings:
    settings = OidcSettings(issuer=idp.issuer, audience=AUDIENCE, **overrides)
    keys = JwksKeys(settings, clock=clock or time.monotonic)
    return AuthSettings(mode="jwt", leeway_seconds=leeway, oidc=OidcVerifier(settings, keys))


def keys_of(auth: AuthSettings) -> JwksKeys:
    assert auth.oidc is not None
    return auth.oidc.keys


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """An HS256 token keyed with ``secret``, built by hand (PyJWT refuses PEM secrets)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


# -- accepted tokens -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_tokens_of_each_algorithm_are_accepted(idp: IdP, alg: str) -> None:
    kid = idp.add_key(alg)
    auth = oidc_auth(idp)
    user = await verify_token(auth, idp.token("alice", kid=kid, ttl=60))
    assert (user.name, user.is_admin, user.authenticated) == ("alice", False, True)
    assert user.expires_at is not None
    assert abs(user.expires_at - (time.time() + 60)) < 5


async def test_keys_are_discovered_once_and_cached(idp: IdP) -> None:
    auth = oidc_auth(idp)
    for _ in range(5):
        await verify_token(auth, idp.token())
    assert idp.requests["/realms/test/.well-known/openid-configuration"] == 1
    assert idp.fetches() == 1


async def test_a_configured_jwks_url_skips_discovery(idp: IdP) -> None:
    auth = oidc_auth(idp, jwks_url=idp.jwks_url)
    await verify_token(auth, idp.token())
    assert idp.fetches() == 1
    assert sum(idp.requests.values()) == 1


async def test_an_audience_list_containing_ours_is_accepted(idp: IdP) -> None:
    user = await verify_token(oidc_auth(idp), idp.token(aud=["account", AUDIENCE]))
    assert user.name == "alice"


async def test_leeway_allows_small_clock_skew(idp: IdP) -> None:
    late = idp.token(ttl=-5)
    assert (await verify_token(oidc_auth(idp, leeway=30), late)).name == "alice"
    with pytest.raises(AuthError, match="expired"):
        await verify_token(oidc_auth(idp), late)


# -- refused tokens --------------------------------------------------------------------


def _refused_tokens(idp: IdP) -> dict[str, str]:
    kid = idp.published[0]
    now = int(time.time())
    claims = {"sub": "mallory", "iss": idp.issuer, "aud": AUDIENCE, "exp": now + 300}
    public_pem = (
        idp.private[kid][0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stranger = new_private_key("RS256")
    es_kid = idp.add_key("ES256", publish=False)
    return {
        "wrong issuer": idp.token(iss="https://evil.example.com/"),
        "wrong audience": idp.token(aud="another-api"),
        "no audience": jwt.encode(
            {k: v for k, v in claims.items() if k != "aud"},
            idp.private[kid][0],
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "expired": idp.token(ttl=-60),
        "not yet valid": idp.token(nbf=now + 600),
        "no expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            idp.private[kid][0],
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "alg none": jwt.encode(claims, "", algorithm="none", headers={"kid": kid}),
        "HS256 keyed with the public key": hs256_with(public_pem, claims, kid),
        "HS256 with a shared secret": hs256_with(b"s" * 48, claims, kid),
        "signed by another key under a known kid": jwt.encode(
            claims, stranger, algorithm="RS256", headers={"kid": kid}
        ),
        "ES256 header with an RSA key's kid": jwt.encode(
            claims, idp.private[es_kid][0], algorithm="ES256", headers={"kid": kid}
        ),
        "no kid": jwt.encode(claims, idp.private[kid][0], algorithm="RS256"),
        "garbage": "not.a.token",
        "huge": "a" * 20_000,
    }


async def test_forged_expired_and_misaddressed_tokens_are_refused(idp: IdP) -> None:
    auth = oidc_auth(idp)
    accepted = []
    for name, token in _refused_tokens(idp).items():
        try:
            await verify_token(auth, token)
        except AuthError:
            continue
        accepted.append(name)
    assert accepted == []
    assert idp.fetches() == 1  # none of them made the service ask the provider again


async def test_algorithms_outside_the_allow_list_are_refused(idp: IdP) -> None:
    kid = idp.add_key("ES256")
    auth = oidc_auth(idp, algorithms=("RS256",))
    with pytest.raises(AuthError, match="algorithm"):
        await verify_token(auth, idp.token(kid=kid))
    assert (await verify_token(auth, idp.token(kid=idp.published[0]))).name == "alice"


def test_settings_refuse_symmetric_algorithms_and_plain_http() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        OidcSettings(issuer="https://id.example.com", audience="a", algorithms=("HS256",))
    with pytest.raises(ValueError, match="https"):
        OidcSettings(issuer="http://id.example.com", audience="a")


# -- claims to identity ----------------------------------------------------------------


async def test_keycloak_realm_roles_map_to_admin(idp: IdP) -> None:
    auth = oidc_auth(idp, roles_claim="realm_access.roles", admin_role="ledger-admin")
    admin = await verify_token(auth, idp.token("root", realm_access={"roles": ["ledger-admin"]}))
    assert admin.is_admin
    assert admin.owns("anyone")
    # The provider's own "admin" role means nothing here unless it is the admin role.
    plain = await verify_token(auth, idp.token("bob", realm_access={"roles": ["admin", "user"]}))
    assert not plain.is_admin
    assert not plain.owns("alice")
    assert plain.owns("bob")
    assert "user" in plain.roles


async def test_auth0_namespaced_roles_and_another_user_claim(idp: IdP) -> None:
    claim = "https://ledger.example.com/roles"
    auth = oidc_auth(idp, roles_claim=claim, user_claim="https://ledger.example.com/owner")
    extra: dict[str, Any] = {claim: ["admin"], "https://ledger.example.com/owner": "alice"}
    token = idp.token("auth0|123", **extra)
    user = await verify_token(auth, token)
    assert (user.name, user.is_admin) == ("alice", True)
    assert user == User("alice", frozenset({"admin"}))


async def test_space_separated_roles_and_bad_claims(idp: IdP) -> None:
    auth = oidc_auth(idp, roles_claim="scope", admin_role="ledger:admin")
    user = await verify_token(auth, idp.token(scope="openid ledger:admin"))
    assert user.is_admin
    for bad in (idp.token(scope=42), idp.token(sub="")):
        with pytest.raises(AuthError, match="claims"):
            await verify_token(auth, bad)


# -- keys that rotate ------------------------------------------------------------------


async def test_unknown_kid_refetches_at_most_once_per_interval_then_rotation(idp: IdP) -> None:
    clock = Clock()
    auth = oidc_auth(idp, clock, refetch_interval_seconds=60)
    old = idp.token()
    await verify_token(auth, old)
    new_kid = idp.rotate("ES256")
    new = idp.token("bob", kid=new_kid)
    clock.advance(30)  # the interval since the last fetch has not passed
    with pytest.raises(AuthError, match="unknown signing key"):
        await verify_token(auth, new)
    assert idp.fetches() == 1
    clock.advance(31)
    assert (await verify_token(auth, new)).name == "bob"
    assert idp.fetches() == 2
    with pytest.raises(AuthError, match="unknown signing key"):  # withdrawn
        await verify_token(auth, old)
    assert idp.fetches() == 2


def _forged_kid_tokens(idp: IdP, n: int) -> list[str]:
    return [idp.token("mallory", headers={"kid": uuid.uuid4().hex}) for _ in range(n)]


async def test_a_flood_of_unknown_kids_is_bounded(idp: IdP) -> None:
    clock = Clock()
    auth = oidc_auth(idp, clock, refetch_interval_seconds=60)
    keys = keys_of(auth)
    forged = _forged_kid_tokens(idp, 300)

    async def attempt(token: str) -> bool:
        try:
            await verify_token(auth, token)
        except AuthError:
            return False
        return True

    # A cold cache: 300 concurrent attempts share one fetch.
    assert not any(await asyncio.gather(*(attempt(t) for t in forged)))
    assert idp.fetches() == 1
    # Within the interval: refused without asking the provider.
    assert not any(await asyncio.gather(*(attempt(t) for t in forged)))
    assert idp.fetches() == 1
    assert keys.status().unknown_kid_refused == 300
    # Next interval: one more fetch, however many ask.
    clock.advance(61)
    assert not any(await asyncio.gather(*(attempt(t) for t in forged)))
    assert idp.fetches() == 2
    assert keys.status().keys == 1
    assert (await verify_token(auth, idp.token())).name == "alice"


async def test_cache_lifetime_follows_max_age_within_bounds(idp: IdP) -> None:
    clock = Clock()
    idp.max_age = 3_600
    auth = oidc_auth(idp, clock, refetch_interval_seconds=60, cache_seconds=300)
    keys = keys_of(auth)
    await verify_token(auth, idp.token())
    clock.advance(1_000)  # past cache_seconds, within max-age: still fresh
    await verify_token(auth, idp.token())
    await keys.refresh()  # the interval has passed: refresh() fetches
    assert idp.fetches() == 2
    idp.max_age = 0  # "do not cache" is floored at the refetch interval
    clock.advance(61)
    await keys.refresh()
    clock.advance(30)
    await verify_token(auth, idp.token())
    assert idp.fetches() == 3
    clock.advance(31)
    await verify_token(auth, idp.token())  # stale: refreshed in the background
    await keys.refresh()  # joins that refresh
    assert idp.fetches() == 4


# -- the provider being away -----------------------------------------------------------


async def test_provider_down_keeps_serving_cached_keys_and_is_reported(idp: IdP) -> None:
    clock = Clock()
    auth = oidc_auth(idp, clock, refetch_interval_seconds=60, cache_seconds=300)
    keys, metrics = keys_of(auth), Metrics()
    refresh_metrics, check = jwks_refresher(keys), jwks_check(keys)
    await verify_token(auth, idp.token())
    await refresh_metrics(metrics)
    assert metrics.jwks_provider_up._value.get() == 1

    idp.down = True
    clock.advance(301)
    assert (await verify_token(auth, idp.token())).name == "alice"  # stale keys still verify
    await keys.refresh()  # join the background refresh, which fails
    status = keys.status()
    assert status.keys == 1
    assert status.last_error is not None
    assert "503" in status.last_error
    result = await check()
    assert result.ok
    assert "unreachable" in result.detail
    await refresh_metrics(metrics)
    assert metrics.jwks_provider_up._value.get() == 0
    text = metrics.render()[0].decode()
    assert 'ledger_jwks_fetches_total{outcome="error"} 1.0' in text
    assert 'ledger_jwks_fetches_total{outcome="ok"} 1.0' in text
    assert "ledger_jwks_keys 1.0" in text

    for _ in range(50):  # many requests, one attempt per interval
        await verify_token(auth, idp.token())
    assert idp.fetches() == 2
    idp.down = False
    clock.advance(61)
    await verify_token(auth, idp.token())
    await keys.refresh()
    assert keys.status().last_error is None
    assert idp.fetches() == 3


async def test_without_any_key_the_check_fails_and_fetches_once_per_interval(idp: IdP) -> None:
    clock = Clock()
    idp.down = True
    auth = oidc_auth(idp, clock, refetch_interval_seconds=60)
    check = jwks_check(keys_of(auth))
    for _ in range(3):
        result = await check()
        assert not result.ok
        assert "no signing keys" in result.detail
    with pytest.raises(AuthError, match="unknown signing key"):
        await verify_token(auth, idp.token())
    assert sum(idp.requests.values()) == 1  # discovery, once
    idp.down = False
    clock.advance(61)
    assert (await check()).ok


async def test_fetches_run_off_the_event_loop(idp: IdP) -> None:
    idp.delay = 0.5
    auth = oidc_auth(idp)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        await verify_token(auth, idp.token())  # discovery and key set: two slow answers
    finally:
        task.cancel()
    assert ticks >= 10  # the loop kept running while the provider took its time


async def test_a_provider_slower_than_the_timeout_is_a_failed_fetch(idp: IdP) -> None:
    idp.delay = 3.0
    auth = oidc_auth(idp, fetch_timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(AuthError, match="unknown signing key"):
        await verify_token(auth, idp.token())
    assert time.monotonic() - started < 2.5
    error = keys_of(auth).status().last_error
    assert error is not None
    assert "timed out" in error


# -- key sets --------------------------------------------------------------------------


def test_only_asymmetric_signing_keys_with_a_kid_are_kept() -> None:
    rsa_key = new_private_key("RS256")
    good = public_jwk(rsa_key, "good", "RS256")
    document = {
        "keys": [
            {"kty": "oct", "k": b64(b"s" * 32), "kid": "shared", "alg": "HS256"},
            {**public_jwk(rsa_key, "enc", "RS256"), "use": "enc"},
            {k: v for k, v in good.items() if k != "kid"},
            {**good, "alg": "RS512"},  # not in the allow-list below
            good,
            "not a key",
        ]
    }
    keys = parse_key_set(document, ("RS256", "ES256"))
    assert list(keys) == ["good"]
    with pytest.raises(KeyFetchError):
        parse_key_set({"keys": [document["keys"][0]]}, ("RS256",))
    with pytest.raises(KeyFetchError):
        parse_key_set(["no", "keys"], ("RS256",))
    many = {"keys": [public_jwk(rsa_key, f"k{i}", "RS256") for i in range(MAX_KEYS + 10)]}
    assert len(parse_key_set(many, ("RS256",))) == MAX_KEYS


def test_auth_settings_take_a_secret_or_a_provider() -> None:
    settings = OidcSettings(issuer="https://id.example.com/", audience="a")
    with pytest.raises(ValueError, match="one of them"):
        AuthSettings(mode="jwt", jwt_secret="x" * 40, oidc=OidcVerifier(settings))
    with pytest.raises(ValueError, match="one of them"):
        AuthSettings(mode="jwt")
