"""Which combinations of settings the service refuses to start with.

Each field is validated on its own in ``runtime/settings.py``; the rules here
look at several fields together: JWT auth needs a long enough secret, and
``APP_ENV=production`` needs a real database, the Mongo store and JWT auth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.settings import Settings

MIN_JWT_SECRET_LENGTH = 32


def configuration_problems(settings: Settings) -> list[str]:
    """One readable line per broken rule; empty when the settings may start the service."""
    return [*_auth_problems(settings), *_production_problems(settings)]


def _auth_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if settings.auth_mode == "jwt" and not _secret_long_enough(settings):
        problems.append(
            f"AUTH_MODE=jwt needs JWT_SECRET of at least {MIN_JWT_SECRET_LENGTH} characters"
        )
    return problems


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
    if settings.auth_mode != "jwt":
        # A short JWT_SECRET with AUTH_MODE=jwt is reported by _auth_problems.
        problems.append("APP_ENV=production needs AUTH_MODE=jwt (and JWT_SECRET)")
    if settings.cors_origins is not None and "*" in settings.cors_origins:
        problems.append("APP_ENV=production refuses CORS_ORIGINS=* (list the frontends' origins)")
    if settings.clock_skew_seconds:
        problems.append("APP_ENV=production refuses CLOCK_SKEW_SECONDS (a test setting)")
    return problems


def _secret_long_enough(settings: Settings) -> bool:
    secret = settings.jwt_secret_value() or ""
    return len(secret) >= MIN_JWT_SECRET_LENGTH
