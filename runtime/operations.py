"""Operator actions on consumers that work from any process: retry after a poison event.

A consumer that keeps failing on one event stops and reports it
(``stopped_on_error``); once the cause is fixed an operator asks it to try
again. The request is written to the consumer's durable checkpoint, so the
process holding the consumer's lease picks it up wherever it runs
(``projections.consumer``). Used by ``ledger projections retry NAME`` and the
admin GraphQL mutation ``retryProjection``.

A consumer may also need work done for a retry beyond resuming it: the
transfer manager never stops on a refused step, it parks the transfer, so
retrying it means re-deciding the parked steps. Such work is a *follow-up*
run right after the request is written (``followups``, by consumer name).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from projections.checkpoints import CheckpointStore


class UnknownProjection(ValueError):
    """``name`` is not one of the service's consumers."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown projection {name!r} (known: {', '.join(known)})")
        self.name = name


class ProjectionRetrier:
    """Writes retry requests for the named consumers (and refuses any other name)."""

    def __init__(
        self,
        checkpoints: CheckpointStore,
        names: Sequence[str],
        *,
        followups: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
    ) -> None:
        self._checkpoints = checkpoints
        self.names: tuple[str, ...] = tuple(names)
        self._followups = dict(followups or {})

    def knows(self, name: str) -> bool:
        return name in self.names

    async def retry(self, name: str) -> None:
        """Ask consumer ``name`` to retry the event it stopped on; ``UnknownProjection`` if none.

        Harmless for a consumer that is running: the request only resumes one
        that stopped on an error before the request was made.
        """
        if not self.knows(name):
            raise UnknownProjection(name, self.names)
        await self._checkpoints.request_retry(name)
        followup = self._followups.get(name)
        if followup is not None:
            await followup()
