"""Taking a lease, verified: the only way projections acquire leases.

``ConsumerLease`` is the lease that makes one instance of a consumer the
active one cluster-wide; ``take_lease`` is the verified acquisition it (and
rebuilds) use.
"""

from __future__ import annotations

import time

from store.protocol import LeaseHolder, Leases


async def take_lease(leases: Leases, name: str, owner: str, ttl_seconds: float) -> bool:
    """Acquire or renew ``name`` for ``owner``; True only if the holder is ``owner`` now.

    Trust but verify: nx-27017 0.8.1 applies an update whose filter is ``{_id, $or: [...]}``
    to a different document, so a lease built on such a filter may report a false
    success (and move another lease). One extra read per renewal rules that out.
    """
    if not await leases.acquire(name, owner, ttl_seconds):
        return False
    holder = await leases.holder(name)
    return holder is not None and holder.owner == owner


class ConsumerLease:
    """Lease ``name`` held by ``owner``, renewed every third of ``ttl`` seconds.

    ``holding`` changes only through ``settle`` and ``release``: a consumer
    that just acquired the lease finishes taking over before it counts as
    holding, so a take-over that fails is tried again on the next renewal.
    """

    def __init__(self, leases: Leases, name: str, owner: str, ttl: float) -> None:
        self._leases = leases
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.holding = False
        self._renewed_at = 0.0

    def fresh(self) -> bool:
        """Held and renewed less than a third of the TTL ago: no need to renew yet."""
        return self.holding and time.monotonic() - self._renewed_at < self.ttl / 3

    def renew_in(self) -> float:
        """Seconds until the next renewal is due (negative when overdue)."""
        return self.ttl / 3 - (time.monotonic() - self._renewed_at)

    async def acquire(self) -> bool:
        return await take_lease(self._leases, self.name, self.owner, self.ttl)

    def settle(self, held: bool) -> None:
        """Record the outcome of an acquisition (and when it happened)."""
        self._renewed_at = time.monotonic()
        self.holding = held

    async def holder(self) -> LeaseHolder | None:
        return await self._leases.holder(self.name)

    async def release(self) -> None:
        """Give the lease up if held, so another instance takes over at once."""
        if self.holding:
            await self._leases.release(self.name, self.owner)
        self.holding = False
