"""WebSocket sessions end when the token that opened them does.

A connection authenticated with a token (``User.expires_at``) is closed by
the server's own timer once the token expires (``exp`` plus the leeway):
``graphql-transport-ws`` closes with 4401, the legacy ``graphql-ws`` sends
``connection_error`` and closes with 4401. A ``subscribe``/``start`` that
arrives after expiry (the timer may not have run yet) gets the same answer
instead of a new operation. The client re-authenticates by reconnecting
with a fresh token.

State per connection is one timer task, cancelled when the connection ends.
The timer is set from the server's clock, never the client's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from schema.auth import AuthSettings, User, session_expired
from schema.context import Context

log = logging.getLogger(__name__)

EXPIRED_CODE = 4401
EXPIRED_REASON = "Unauthorized: token expired"


class SessionTimer:
    """Runs ``on_expiry`` once when the caller's token expires; one per connection."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def arm(
        self, settings: AuthSettings, user: User, on_expiry: Callable[[], Awaitable[None]]
    ) -> None:
        """(Re)start the timer for ``user``; a user without expiry has none."""
        self.disarm()
        if user.expires_at is None:
            return
        delay = max(user.expires_at + settings.leeway_seconds - time.time(), 0.0)
        self._task = asyncio.get_running_loop().create_task(self._fire(delay, on_expiry))

    def disarm(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @staticmethod
    async def _fire(delay: float, on_expiry: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(delay)
        try:
            await on_expiry()
        except Exception:  # the client is most likely gone already
            log.debug("closing an expired WebSocket session failed", exc_info=True)


class ExpiringTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws`` with sessions that end when the token does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_timer = SessionTimer()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        was_acknowledged = self.connection_acknowledged
        await super().handle_connection_init(message)
        if self.connection_acknowledged and not was_acknowledged:
            self.session_timer.arm(self.context.auth, self.context.user, self.end_session)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and session_expired(self.context.auth, self.context.user):
            await self.end_session()
            return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        self.session_timer.disarm()
        await super().shutdown()

    async def end_session(self) -> None:
        await self.websocket.close(code=EXPIRED_CODE, reason=EXPIRED_REASON)


class ExpiringLegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """``graphql-ws`` with sessions that end when the token does.

    Every ``connection_init`` authenticates again (strawberry's behaviour), so
    the timer follows the latest accepted token.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_timer = SessionTimer()

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.session_timer.arm(self.context.auth, self.context.user, self.end_session)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and session_expired(self.context.auth, self.context.user):
            await self.end_session()
            return
        await super().handle_start(message)

    async def cleanup(self) -> None:
        self.session_timer.disarm()
        await super().cleanup()

    async def end_session(self) -> None:
        with suppress(Exception):  # the close below still runs if the client is gone
            await self.send_message(
                {"type": "connection_error", "payload": {"message": EXPIRED_REASON}}
            )
        await self.websocket.close(code=EXPIRED_CODE, reason=EXPIRED_REASON)
