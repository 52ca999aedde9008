"""Context.copy_for: the per-request copy schema.app makes of the process-wide context."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from schema.app import make_graphql_app
from schema.auth import ANONYMOUS, DEV_USER
from tests.wiring import Wiring


def http_request(headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers or []})


async def test_copy_for_is_replace_without_touching_the_base(wiring: Wiring) -> None:
    base = wiring.context
    before = replace(base)
    request, response = http_request(), Response()
    copy = base.copy_for(DEV_USER, request, response)
    assert copy == replace(base, user=DEV_USER, request=request, response=response)
    assert type(copy) is type(base)
    assert copy is not base
    assert base == before
    assert base.user is ANONYMOUS
    assert base.request is None


async def test_every_request_and_connection_gets_its_own_context(wiring: Wiring) -> None:
    app = make_graphql_app(wiring.context, wiring.schema)
    first = await app.get_context(http_request(), Response())
    second = await app.get_context(http_request(), Response())
    assert first is not second
    assert first.user == DEV_USER  # AUTH_MODE=dev
    assert first.request is not second.request
    socket = WebSocket(
        {"type": "websocket", "path": "/graphql", "headers": []},
        receive=None,  # type: ignore[arg-type]
        send=None,  # type: ignore[arg-type]
    )
    connection = await app.get_context(socket, socket)
    connection.connection_params = {"token": "ignored in dev mode"}
    await app.on_ws_connect(connection)
    assert connection.user == DEV_USER
    assert connection.request is socket
    assert wiring.context.user is ANONYMOUS
    assert wiring.context.connection_params is None
