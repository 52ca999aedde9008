"""An ASGI endpoint whose app is set later, once the lifespan has built it.

Routes are fixed when the Starlette app is created, but the GraphQL app needs
the database, stores and consumers that only exist after start-up. uvicorn
serves no request before the lifespan's start-up finishes, so in practice the
slot is always filled; until then it answers 503 (HTTP) or closes 1013
("try again later", WebSocket).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class LateApp:
    """Forwards to ``app`` once it is set."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
        else:
            body = b'{"errors":[{"message":"service is starting"}]}'
            await send({
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": body})
