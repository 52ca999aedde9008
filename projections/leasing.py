"""Taking a lease, verified: the only way projections acquire leases.

``ConsumerLease`` is the lease that makes one instance of a consumer the
active one cluster-wide; ``take_lease`` is the verified acquisition it (and
rebuilds) use.
"""

from __future__ import annotations

import time

from store.protocol import LeaseHolder, Leases


async def take_lease(
    leases: Leases, name: str, owner: str, ttl_seconds: float
) -> LeaseHolder | None:
    """Take ``name`` for ``owner`` as a newcomer (a new epoch); the acquisition, verified.

    Trust but verify: nx-27017 0.8.1 applies an update whose filter is ``{_id, $or: [...]}``
    to a different document, so a lease built on such a filter may report a false
    success (and move another lease). One extra read per acquisition rules that out;
    renewals filter on ``{_id, owner, epoch}`` and need no such read.
    """
    taken = await leases.acquire(name, owner, ttl_seconds)
    if taken is None:
        return None
    holder = await leases.holder(name)
    if holder is None or (holder.owner, holder.epoch) != (owner, taken.epoch):
        return None
    return taken


class ConsumerLease:
    """Lease ``name`` held by ``owner``, renewed every third of ``ttl`` seconds.

    ``current`` (the acquisition this instance works under, with its epoch)
    changes only through ``settle``, ``lose`` and ``release``: a consumer that
    just took the lease finishes taking over before it counts as holding, so
    a take-over that fails is tried again (as a newcomer) on the next round.
    """

    def __init__(self, leases: Leases, name: str, owner: str, ttl: float) -> None:
        self._leases = leases
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.current: LeaseHolder | None = None
        self._renewed_at = 0.0

    @property
    def holding(self) -> bool:
        return self.current is not None

    @property
    def epoch(self) -> int:
        """The fencing token of the acquisition held; 0 when none is."""
        return 0 if self.current is None else self.current.epoch

    def fresh(self) -> bool:
        """Held and renewed less than a third of the TTL ago: no need to renew yet."""
        return self.holding and time.monotonic() - self._renewed_at < self.ttl / 3

    def renew_in(self) -> float:
        """Seconds until the next renewal is due (negative when overdue)."""
        return self.ttl / 3 - (time.monotonic() - self._renewed_at)

    async def acquire(self) -> LeaseHolder | None:
        """Renew the acquisition held (same epoch) or, holding none, take a new one."""
        if self.current is not None:
            return await self._leases.renew(self.current, self.ttl)
        return await take_lease(self._leases, self.name, self.owner, self.ttl)

    def settle(self, held: LeaseHolder | None) -> None:
        """Record the outcome of an acquisition (and when it happened)."""
        self._renewed_at = time.monotonic()
        self.current = held

    def lose(self) -> None:
        """A write under this epoch was refused: the next acquisition is a newcomer's."""
        self.current = None

    async def holder(self) -> LeaseHolder | None:
        return await self._leases.holder(self.name)

    async def clock_ms(self) -> int:
        """Now on the clock the lease (and a rebuild's pause) is judged by."""
        return await self._leases.clock_ms()

    async def release(self) -> None:
        """Give the lease up if held, so another instance takes over at once."""
        if self.current is not None:
            await self._leases.release(self.name, self.owner)
        self.current = None
