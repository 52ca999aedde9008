"""Cross-origin frontends: CORS over HTTP and the same origin list for WebSocket handshakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from runtime.cors import cors_middleware
from runtime.settings import DEV_CORS_ORIGINS, SettingsError, load_settings
from tests.frontend.serving import served

FRONTEND = "http://localhost:3000"
STRANGER = "http://evil.example"
PROTOCOLS = ("graphql-transport-ws", "graphql-ws")
PRODUCTION = {
    "app_env": "production",
    "mongodb_url": "mongodb://db.invalid:27017",
    "auth_mode": "jwt",
    "jwt_secret": "Zt4mQ8vL2nX6pR0wK9cH3yB7fD5gJ1sA",  # production refuses "x" * 40
}


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    async with served(cors_origins=[FRONTEND, "https://app.example.com"]) as url:
        yield url


def _preflight(origin: str, headers: str = "content-type,authorization") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": headers,
    }


async def test_a_listed_origin_gets_its_preflight_and_response(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        preflight = await http.options("/graphql", headers=_preflight(FRONTEND))
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        allowed = preflight.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "x-request-id", "traceparent"):
            assert header in allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in preflight.headers

        answer = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": FRONTEND}
        )
        assert answer.status_code == 200
        assert answer.json()["data"] == {"__typename": "Query"}
        assert answer.headers["access-control-allow-origin"] == FRONTEND
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_is_refused(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        preflight = await http.options("/graphql", headers=_preflight(STRANGER))
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        # A simple request still runs (CORS is enforced by the browser), but the
        # response carries no permission for the page to read it.
        answer = await http.get(
            "/graphql", params={"query": "{ __typename }"}, headers={"origin": STRANGER}
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_a_header_outside_the_list_is_refused_in_preflight(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        preflight = await http.options("/graphql", headers=_preflight(FRONTEND, "x-secret"))
        assert preflight.status_code == 400


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_websocket_origins_follow_the_same_list(base_url: str, protocol: str) -> None:
    ws_url = base_url.replace("http", "ws") + "/graphql"
    for origin in (FRONTEND, "https://app.example.com"):
        async with websockets.connect(
            ws_url, subprotocols=[Subprotocol(protocol)], origin=websockets.Origin(origin)
        ) as socket:
            assert socket.subprotocol == protocol
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            ws_url, subprotocols=[Subprotocol(protocol)], origin=websockets.Origin(STRANGER)
        ):
            pass
    assert refused.value.response.status_code == 403
    # No Origin: not a browser, nothing ambient to borrow; accepted.
    async with websockets.connect(ws_url, subprotocols=[Subprotocol(protocol)]) as socket:
        assert socket.subprotocol == protocol


async def test_development_allows_the_usual_dev_servers_by_default() -> None:
    async with served() as url, httpx.AsyncClient(base_url=url) as http:
        for origin in ("http://localhost:3000", "http://127.0.0.1:5173"):
            preflight = await http.options("/graphql", headers=_preflight(origin))
            assert preflight.headers["access-control-allow-origin"] == origin
        preflight = await http.options("/graphql", headers=_preflight("http://localhost:3001"))
        assert preflight.status_code == 400


async def test_credentials_are_allowed_only_when_switched_on() -> None:
    async with (
        served(cors_origins=[FRONTEND], cors_allow_credentials=True) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        preflight = await http.options("/graphql", headers=_preflight(FRONTEND))
        assert preflight.headers["access-control-allow-credentials"] == "true"


def test_production_allows_no_origin_unless_configured() -> None:
    settings = load_settings(None, **PRODUCTION)
    assert settings.effective_cors_origins == ()
    assert cors_middleware(settings) == []
    configured = load_settings(None, **PRODUCTION, cors_origins="https://app.example.com")
    assert configured.effective_cors_origins == ("https://app.example.com",)


def test_production_refuses_any_origin() -> None:
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        load_settings(None, **PRODUCTION, cors_origins="*")
    assert load_settings(None, cors_origins="*").effective_cors_origins == ("*",)


def test_origins_are_read_from_the_environment_and_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " HTTPS://App.Example.com:443, http://localhost:8080 ")
    monkeypatch.setenv("CORS_ALLOW_HEADERS", '["Authorization", "Content-Type"]')
    settings = load_settings(None)
    assert settings.effective_cors_origins == ("https://app.example.com", "http://localhost:8080")
    assert settings.cors_allow_headers == ["Authorization", "Content-Type"]
    assert "http://localhost:3000" in DEV_CORS_ORIGINS


@pytest.mark.parametrize(
    "bad", ["localhost:3000", "http://localhost:3000/", "http://a.example/path", "ftp://a.example"]
)
def test_what_is_not_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        load_settings(None, cors_origins=bad)
