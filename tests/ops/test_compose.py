"""docker-compose.yml wires the service to a MongoDB replica set as intended.

Docker cannot run here, so the file is parsed and checked; the app service's
environment is also fed through the real settings loader, which proves the
production profile it describes would start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Vb6qN2xP8rT4kL0zW7mC3hY9dF5gJ1sQeR"  # random-looking: production refuses "s" * 40


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` forms."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_services_volume_and_dependency() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"db", "app"}
    db, app = services["db"], services["app"]
    assert str(db["image"]).startswith("mongo:")
    assert "--replSet" in db["command"]
    assert "mongo-data:/data/db" in db["volumes"]
    assert "mongo-data" in compose["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["build"]["context"] == "."


def test_db_healthcheck_initiates_the_replica_set() -> None:
    check = _compose()["services"]["db"]["healthcheck"]
    script = " ".join(check["test"])
    assert "rs.initiate" in script
    assert "host: 'db:27017'" in script
    assert "isWritablePrimary" in script
    assert int(check["retries"]) >= 10


def test_app_healthcheck_and_graceful_stop() -> None:
    app = _compose()["services"]["app"]
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert app["stop_grace_period"]
    assert app["ports"][0].endswith(":8000")


def test_app_environment_is_a_valid_production_configuration() -> None:
    env = _compose()["services"]["app"]["environment"]
    resolved = {k: _interpolate(str(v), {"JWT_SECRET": SECRET}) for k, v in env.items()}
    assert resolved["MONGODB_URL"].startswith("mongodb://db:27017/")
    assert "replicaSet=rs0" in resolved["MONGODB_URL"]
    settings = load_settings(None, **{k.lower(): v for k, v in resolved.items()})
    assert settings.is_production
    assert settings.auth_mode == "jwt"
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled


def test_jwt_secret_must_come_from_outside() -> None:
    env = _compose()["services"]["app"]["environment"]
    with pytest.raises(KeyError, match="JWT_SECRET"):
        _interpolate(str(env["JWT_SECRET"]), {})
