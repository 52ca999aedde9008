from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.embedded import EmbeddedMongo
from tests.e2e.server import Server, running_server

JWT_SECRET = "e2e-secret-which-is-long-enough-for-hs256-0123456789"
FAST = {"CONNECTION_INIT_TIMEOUT_SECONDS": "1.5", "MAX_SUBSCRIPTIONS_PER_CONNECTION": "2"}


@pytest.fixture(scope="module")
def server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The real service in dev auth mode, one per test module."""
    with running_server(tmp_path_factory.mktemp("e2e"), embedded_mongo.url, FAST) as running:
        yield running


@pytest.fixture(scope="module")
def jwt_server(
    embedded_mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The real service with AUTH_MODE=jwt."""
    env = {**FAST, "AUTH_MODE": "jwt", "JWT_SECRET": JWT_SECRET}
    with running_server(tmp_path_factory.mktemp("e2e"), embedded_mongo.url, env) as running:
        yield running
