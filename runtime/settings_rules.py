"""Which combinations of settings the service refuses to start with.

Each field is validated on its own in ``runtime/settings.py``; the rules here
look at several fields together: JWT auth needs a long enough secret or an
OIDC provider (with an audience, over https), and ``APP_ENV=production``
needs a real database, the Mongo store and JWT auth.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from schema.oidc import SUPPORTED_ALGORITHMS, is_acceptable_url

if TYPE_CHECKING:
    from runtime.settings import Settings

MIN_JWT_SECRET_LENGTH = 32


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
