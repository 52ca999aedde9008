"""How far each consumer is: checkpoint, head, lag, state, last error, items parked.

``ConsumerStatus`` is what the CLI's status command and the GraphQL
``projections`` query show. ``StatusReporter`` builds it from durable state
(checkpoints and leases), so it works in any process, also one that runs no
consumers; a ``Consumer`` reports its own live status the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from projections.checkpoints import Checkpoint, CheckpointStore
from store.protocol import EventStore, Leases

RUNNING = "running"
STANDBY = "standby"
REBUILDING = "rebuilding"
STOPPED_ON_ERROR = "stopped_on_error"
STOPPED = "stopped"


@dataclass(frozen=True)
class ConsumerStatus:
    """One consumer's progress. ``lag_seconds`` is the age of its oldest unprocessed event."""

    name: str
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    state: str
    last_error: str | None = None
    error_position: int | None = None
    owner: str | None = None
    needs_attention: int = 0
    """Items the consumer parked for an operator (counted up to ``ATTENTION_CAP``)."""


ATTENTION_CAP = 10_000
AttentionCounter = Callable[[int], Awaitable[int]]
"""Counts a consumer's parked items, up to the cap it is given (a bounded read)."""


async def lag_seconds(store: EventStore, checkpoint: int, head: int) -> float:
    """Seconds since the oldest event the consumer has not processed was recorded."""
    if checkpoint >= head:
        return 0.0
    pending = await store.read_all(checkpoint, 1)
    if not pending:
        return 0.0
    age = datetime.now(UTC) - pending[0].recorded_at
    return max(age.total_seconds(), 0.0)


async def status_at(
    store: EventStore,
    name: str,
    position: int,
    head: int,
    state: str,
    *,
    last_error: str | None = None,
    error_position: int | None = None,
    owner: str | None = None,
) -> ConsumerStatus:
    """``name``'s status at checkpoint ``position``, its lag measured against ``head``."""
    return ConsumerStatus(
        name=name,
        checkpoint=position,
        head=head,
        lag_events=max(head - position, 0),
        lag_seconds=await lag_seconds(store, position, head),
        state=state,
        last_error=last_error,
        error_position=error_position,
        owner=owner,
    )


def rebuild_lease_name(name: str) -> str:
    """The lease a rebuild of consumer ``name`` holds for its whole run."""
    return f"rebuild:{name}"


def durable_state(checkpoint: Checkpoint, lease_live: bool, rebuilding: bool) -> str:
    """The state as seen from outside the consumer's process."""
    if rebuilding:
        return REBUILDING
    if checkpoint.state == STOPPED_ON_ERROR and lease_live:
        return STOPPED_ON_ERROR
    return RUNNING if lease_live else STOPPED


class StatusReporter:
    """Status of the named consumers from checkpoints, leases and the store head."""

    def __init__(
        self,
        store: EventStore,
        checkpoints: CheckpointStore,
        leases: Leases,
        names: Sequence[str],
        attention: Mapping[str, AttentionCounter] | None = None,
    ) -> None:
        """``attention``: for consumers that park what they cannot finish (the transfer
        manager's NEEDS_ATTENTION transfers), how to count what is parked."""
        self._store = store
        self._checkpoints = checkpoints
        self._leases = leases
        self._names = list(names)
        self._attention = dict(attention or {})

    async def report(self) -> list[ConsumerStatus]:
        head = await self._store.head_position()
        checkpoints = await self._checkpoints.load_all(self._names)
        return [await self._one(checkpoints[name], head) for name in self._names]

    async def _one(self, checkpoint: Checkpoint, head: int) -> ConsumerStatus:
        # Liveness as the lease store's clock judges it, not this process's.
        holder = await self._leases.holder(checkpoint.name)
        live = holder is not None and holder.live
        rebuilder = await self._leases.holder(rebuild_lease_name(checkpoint.name))
        rebuilding = rebuilder is not None and rebuilder.live
        state = durable_state(checkpoint, live, rebuilding)
        failed = state == STOPPED_ON_ERROR
        count = self._attention.get(checkpoint.name)
        status = await status_at(
            self._store,
            checkpoint.name,
            checkpoint.position,
            head,
            state,
            last_error=checkpoint.error if failed else None,
            error_position=checkpoint.error_position if failed else None,
            owner=holder.owner if live and holder is not None else None,
        )
        if count is None:
            return status
        return replace(status, needs_attention=await count(ATTENTION_CAP))
