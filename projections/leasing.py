"""Taking a lease, verified: the only way projections acquire leases."""

from __future__ import annotations

from store.protocol import Leases


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
