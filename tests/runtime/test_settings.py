"""Settings: defaults, validation messages, and the production profile's refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.settings import (
    MIN_JWT_SECRET_LENGTH,
    Settings,
    SettingsError,
    load_settings,
    settings_table,
)

GOOD_SECRET = "kQ3v9Zr7Lp2Xw8Tn5Bm1Hc6Yd4Fj0GsA"  # random-looking, MIN_JWT_SECRET_LENGTH long
PRODUCTION = {
    "app_env": "production",
    "mongodb_url": "mongodb://db:27017/?replicaSet=rs0",
    "auth_mode": "jwt",
    "jwt_secret": GOOD_SECRET,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable from the developer's shell or a .env file leaks into these tests."""

    for name in list(os.environ):
        if name.upper() in {
            "HOST", "PORT", "DATA_DIR", "MONGODB_URL", "MONGODB_DATABASE", "APP_ENV",
            "AUTH_MODE", "JWT_SECRET", "GRAPHIQL", "INTROSPECTION", "LOG_LEVEL",
            "LOG_FORMAT", "STORE", "SNAPSHOT_EVERY",
        }:  # fmt: skip
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_development_defaults() -> None:
    settings = load_settings(None)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path(".data")
    assert settings.uses_embedded_database
    assert settings.auth_mode == "dev"
    assert settings.graphiql_enabled
    assert settings.introspection_enabled
    assert settings.effective_log_format == "text"
    assert settings.snapshot_every == 20


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("MONGODB_URL", "mongodb://example:27017")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(None)
    assert settings.port == 9123
    assert not settings.uses_embedded_database
    assert settings.effective_log_level == "DEBUG"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=9200\nGRAPHIQL=false\nMONGODB_URL=\n")
    settings = load_settings(tmp_path / ".env")
    assert settings.port == 9200
    assert not settings.graphiql_enabled
    assert settings.mongodb_url is None  # blank means "default", not ""


def test_every_bad_value_is_named_in_one_message() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, port="eighty", log_level="loud", mongodb_url="http://x", store="disk")
    message = str(caught.value)
    for name in ("PORT", "LOG_LEVEL", "MONGODB_URL", "STORE"):
        assert f"  {name}:" in message


def test_production_refuses_without_database_and_jwt() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, app_env="production")
    message = str(caught.value)
    assert "APP_ENV=production needs MONGODB_URL" in message
    assert "APP_ENV=production needs AUTH_MODE=jwt" in message


@pytest.mark.parametrize("secret", ["a" * 32, "changeme" * 4, "0123456789abcdef" * 4, "ab" * 40])
def test_production_refuses_a_guessable_jwt_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match="guessable JWT_SECRET"):
        load_settings(None, **{**PRODUCTION, "jwt_secret": secret})
    # Development starts with it (only production insists on a real key).
    assert load_settings(None, auth_mode="jwt", jwt_secret=secret).auth_mode == "jwt"


@pytest.mark.parametrize("secret", [None, "", "short", "y" * (MIN_JWT_SECRET_LENGTH - 1)])
def test_production_refuses_a_missing_or_short_jwt_secret(secret: str | None) -> None:
    with pytest.raises(SettingsError, match=f"JWT_SECRET of at least {MIN_JWT_SECRET_LENGTH}"):
        load_settings(None, **{**PRODUCTION, "jwt_secret": secret})


def test_production_refuses_the_memory_store() -> None:
    with pytest.raises(SettingsError, match="STORE=mongo"):
        load_settings(None, **PRODUCTION, store="memory")


def test_production_refuses_a_clock_skew() -> None:
    with pytest.raises(SettingsError, match="refuses CLOCK_SKEW_SECONDS"):
        load_settings(None, **PRODUCTION, clock_skew_seconds=30)
    assert load_settings(None, clock_skew_seconds=-30).clock_skew_seconds == -30


def test_production_turns_graphiql_and_introspection_off_unless_enabled() -> None:
    settings = load_settings(None, **PRODUCTION)
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled
    assert settings.effective_log_format == "json"
    opened = load_settings(None, **PRODUCTION, graphiql="true", introspection="1")
    assert opened.graphiql_enabled
    assert opened.introspection_enabled


def test_secrets_never_appear_in_the_description() -> None:
    settings = load_settings(
        None, **{**PRODUCTION, "mongodb_url": "mongodb://app:hunter2@db:27017/"}
    )
    text = f"{settings.describe()} {settings!r} {settings}"
    assert "hunter2" not in text
    assert GOOD_SECRET not in text
    assert settings.mongodb_url_value() == "mongodb://app:hunter2@db:27017/"


def test_limits_are_bounded() -> None:
    with pytest.raises(SettingsError, match="MAX_PAGE_SIZE"):
        load_settings(None, max_page_size=0)


def test_every_setting_is_documented() -> None:
    table = settings_table()
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} needs a description"
        assert f"`{name.upper()}`" in table


def test_the_readme_lists_every_variable() -> None:
    """One table in the README lists every variable (``settings_table()`` prints it)."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.exists():
        pytest.fail("README.md is missing")
    text = readme.read_text()
    missing = [n.upper() for n in Settings.model_fields if n.upper() not in text]
    assert not missing, f"README.md lacks {missing}; paste runtime.settings.settings_table()"


def test_an_override_that_is_not_a_setting_is_refused() -> None:
    with pytest.raises(TypeError, match="not settings: introspection_enabled"):
        load_settings(None, introspection_enabled=False)
