"""WebSocket sessions end when the token that opened them does.

A connection authenticated with a token (``User.expires_at``) is closed by
the server's own timer once the token expires (``exp`` plus the leeway):
``graphql-transport-ws`` closes with 4401, the legacy ``graphql-ws`` sends
``connection_error`` and closes with 4401. A ``subscribe``/``start`` that
arrives after expiry (the timer may not have run yet) gets the same answer
instead of a new operation. The client re-authenticates by reconnecting
with a fresh token.

State per connection is one timer task, cancelled when the connection ends.
The timer is set from the server's clock, never the client's. The protocol
handlers (``schema._engine.websockets``) arm it and end the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from schema.auth import AuthSettings, User

log = logging.getLogger(__name__)

EXPIRED_CODE = 4401
EXPIRED_REASON = "Unauthorized: token expired"


class SessionTimer:
    """Runs ``on_expiry`` once when the caller's token expires; one per connection."""

    __slots__ = ("_task",)  # one per connection, most of them idle

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
