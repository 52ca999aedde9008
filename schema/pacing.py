"""Pacing of read-model subscribers: a topic's fan-out never runs ahead of the server.

A read-model stream awaits ``PACER.pace(hub, topic)`` after each message it
sent. The pause is ``SECONDS_PER_MESSAGE`` times the topic's subscriber count
in this process (1,000 subscribers: 0.4 s), so a topic costs at most ~2,500
messages/s however fast it changes; meanwhile the subscriber's latest-only
queue keeps only the newest document, so a burst reaches it as its latest
state and nothing stale piles up in front of a socket. The pause hardly adds
to the age of what a subscriber receives: when it ends, the subscriber sends
the newest document there is.

The pause also adapts to the event loop: a pause that ends more than
``LATE_SECONDS`` after it was due means the loop is behind (the machine is
busy, or sending costs more than budgeted), and the pacer lengthens every
pause a little, up to ``MAX_FACTOR``; pauses that end on time shorten it back.
Mutations, queries and the projectors thus keep getting the loop however many
subscribers there are. Each pause is jittered (0.8x-1.2x) so that subscribers
woken together by one change spread out instead of returning as one burst.
"""

from __future__ import annotations

import asyncio
import random

from projections.hub import Hub

SECONDS_PER_MESSAGE = 0.0004
MIN_PAUSE = 0.001  # shorter pauses are not worth a timer
LATE_SECONDS = 0.05
MAX_FACTOR = 5.0
SLOWER, FASTER = 1.002, 0.999  # per late / on-time pause (thousands per second)


class Pacer:
    """Spaces each subscriber's messages; ``factor`` (>= 1) grows while the loop is late."""

    def __init__(
        self,
        per_message: float = SECONDS_PER_MESSAGE,
        *,
        late: float = LATE_SECONDS,
        max_factor: float = MAX_FACTOR,
    ) -> None:
        self.per_message = per_message
        self.late = late
        self.max_factor = max_factor
        self.factor = 1.0

    def pause_after(self, hub: Hub, topic: str) -> float:
        """Seconds to pause after a message on ``topic`` (0 when not worth a timer), unjittered."""
        pause = hub.subscriber_count(topic) * self.per_message * self.factor
        return pause if pause >= MIN_PAUSE else 0.0

    async def pace(self, hub: Hub, topic: str) -> None:
        """Pause after a message on ``topic``; learn from how late the pause ends."""
        pause = self.pause_after(hub, topic) * random.uniform(0.8, 1.2)
        if not pause:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + pause
        await asyncio.sleep(pause)
        self.observe(loop.time() - due)

    def observe(self, lateness: float) -> None:
        """Lengthen pauses a little after a late one, shorten them after one on time."""
        if lateness > self.late:
            self.factor = min(self.factor * SLOWER, self.max_factor)
        else:
            self.factor = max(self.factor * FASTER, 1.0)


PACER = Pacer()
"""The process-wide pacer ``schema.subscriptions`` uses."""
