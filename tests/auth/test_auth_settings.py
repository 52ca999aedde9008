"""Which OIDC settings the service starts with, and what they turn into."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.settings import SettingsError, auth_from, load_settings

ISSUER = "https://keycloak.example.com/realms/bank"
SECRET = "a-development-secret-that-is-long-enough-0123"


def settings(**overrides: Any) -> Any:
    return load_settings(env_file=None, **overrides)


def test_an_oidc_provider_configures_jwt_mode() -> None:
    loaded = settings(
        auth_mode="jwt",
        oidc_issuer=ISSUER,
        oidc_audience="ledger-api",
        oidc_roles_claim="realm_access.roles",
        oidc_algorithms="RS256, ES256",
        jwt_leeway_seconds=5,
    )
    auth = auth_from(loaded)
    assert auth.oidc is not None
    assert auth.jwt_secret is None
    assert auth.leeway_seconds == 5
    assert auth.oidc.settings.algorithms == ("RS256", "ES256")
    assert auth.oidc.settings.roles_claim == "realm_access.roles"


def test_production_accepts_a_provider_instead_of_a_secret() -> None:
    loaded = settings(
        app_env="production",
        mongodb_url="mongodb://db.example.com:27017/?replicaSet=rs0",
        auth_mode="jwt",
        oidc_issuer=ISSUER,
        oidc_audience="ledger-api",
    )
    assert auth_from(loaded).oidc is not None


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "jwt_secret": SECRET}, "not both"),
        ({"oidc_issuer": ISSUER}, "OIDC_AUDIENCE"),
        ({"jwks_url": "https://id.example.com/keys", "jwt_secret": SECRET}, "JWKS_URL needs"),
        ({"oidc_issuer": "http://id.example.com", "oidc_audience": "a"}, "https"),
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_algorithms": "HS256"}, "ALGORITHMS"),
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_algorithms": "none"}, "ALGORITHMS"),
        ({}, "JWT_SECRET"),
    ],
)
def test_incomplete_or_unsafe_oidc_settings_are_refused(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        settings(auth_mode="jwt", **overrides)
