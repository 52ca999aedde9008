"""The transfer process manager: moves the money of each requested transfer, exactly once.

It reacts to events in global order and sends the next command of the
workflow (issue 4, item 3):

    TransferRequested         -> DebitForTransfer(source)   | rejected -> FailTransfer
    MoneyDebitedForTransfer   -> MarkTransferDebited
    TransferDebited           -> CreditForTransfer(target)  | rejected -> RefuseTransferCredit
    MoneyCreditedForTransfer  -> CompleteTransfer
    TransferCreditRefused     -> RefundForTransfer(source)
    MoneyRefundedForTransfer  -> MarkTransferRefunded       (records TransferRefunded + Failed)

Every command's id is derived from the triggering event's id and the step, so
a redelivered event sends the same command id and the write side returns the
first outcome instead of moving money twice. Causation id = the event id,
correlation id = the transfer id. A ``ConcurrencyConflict`` (retries exhausted)
is not a business rejection: it propagates, and the consumer retries the event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from application.context import CommandContext
from domain.account_messages import CreditForTransfer, DebitForTransfer, RefundForTransfer
from domain.aggregate import DomainError
from domain.codec import EventRegistry
from domain.transfer_messages import (
    CompleteTransfer,
    FailTransfer,
    MarkTransferDebited,
    MarkTransferRefunded,
    RefuseTransferCredit,
)
from projections.projector import default_registry, payload
from store.protocol import EventStore, RecordedEvent

NAME = "transfer_manager"
ACTOR = "transfer-manager"
TRANSIENT_CODES = frozenset({"concurrency_conflict"})
_NAMESPACE = uuid.UUID("6f1c3d2e-1b7a-4f0e-9a57-2d6c8b4e1f90")


class CommandSender(Protocol):
    """Where commands go (``application.service.ApplicationService`` fits)."""

    async def handle(self, command: Any, context: CommandContext) -> Any: ...


def derived_command_id(event_id: str, step: str) -> str:
    """The same ``cmd-<32 hex>`` id every time ``step`` reacts to ``event_id``."""
    return f"cmd-{uuid.uuid5(_NAMESPACE, f'{event_id}/{step}').hex}"


def is_rejection(error: DomainError) -> bool:
    """A business rejection (not a transient conflict worth retrying)."""
    return error.code not in TRANSIENT_CODES


Step = Callable[["TransferManager", RecordedEvent, dict[str, Any]], Awaitable[None]]


class TransferManager:
    """An ``EventHandler`` for the consumer runtime; stateless apart from a request cache."""

    name = NAME

    def __init__(
        self,
        sender: CommandSender,
        store: EventStore,
        *,
        registry: EventRegistry | None = None,
        actor: str = ACTOR,
        cache_size: int = 10_000,
        concurrency: int = 8,
    ) -> None:
        self._sender = sender
        self._store = store
        self._registry = registry or default_registry()
        self._actor = actor
        self._requests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._concurrency = max(concurrency, 1)

    async def prepare(self) -> None:
        return None

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """React to ``events``: in order per transfer, different transfers concurrently.

        If any reaction fails the batch fails, and the consumer retries its events
        one by one, in order (a reaction that already happened is deduplicated).
        """
        by_transfer: dict[str, list[tuple[Step, RecordedEvent, dict[str, Any]]]] = {}
        for event in events:
            step = STEPS.get(event.type)
            if step is not None:
                data = payload(self._registry, event)
                by_transfer.setdefault(data["transfer_id"], []).append((step, event, data))
        limit = asyncio.Semaphore(self._concurrency)

        async def run(reactions: list[tuple[Step, RecordedEvent, dict[str, Any]]]) -> None:
            async with limit:
                for step, event, data in reactions:
                    await step(self, event, data)

        tasks = [asyncio.ensure_future(run(r)) for r in by_transfer.values()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # Stop the other reactions too; the consumer replays the batch in order.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- steps -------------------------------------------------------------------

    async def on_requested(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        self._remember(transfer_id, data)
        debit = DebitForTransfer(data["from_account_id"], transfer_id, data["amount"])
        error = await self._send(debit, event, "debit", transfer_id)
        if error is not None:
            await self._send(FailTransfer(transfer_id, _reason(error)), event, "fail", transfer_id)

    async def on_debited(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        mark = MarkTransferDebited(transfer_id, data["currency"])
        await self._send_expecting_success(mark, event, "mark-debited", transfer_id)

    async def on_transfer_debited(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        request = await self._request(transfer_id)
        credit = CreditForTransfer(
            request["to_account_id"], transfer_id, request["amount"], data["currency"]
        )
        error = await self._send(credit, event, "credit", transfer_id)
        if error is not None:
            refuse = RefuseTransferCredit(transfer_id, _reason(error))
            await self._send_expecting_success(refuse, event, "refuse-credit", transfer_id)

    async def on_credited(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        complete = CompleteTransfer(transfer_id)
        await self._send_expecting_success(complete, event, "complete", transfer_id)

    async def on_credit_refused(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        request = await self._request(transfer_id)
        refund = RefundForTransfer(request["from_account_id"], transfer_id, request["amount"])
        await self._send_expecting_success(refund, event, "refund", transfer_id)

    async def on_refunded(self, event: RecordedEvent, data: dict[str, Any]) -> None:
        transfer_id = data["transfer_id"]
        mark = MarkTransferRefunded(transfer_id)
        await self._send_expecting_success(mark, event, "mark-refunded", transfer_id)

    # -- sending -----------------------------------------------------------------

    async def _send(
        self, command: Any, event: RecordedEvent, step: str, transfer_id: str
    ) -> DomainError | None:
        """Send ``command``; return its business rejection, if any."""
        context = CommandContext(
            command_id=derived_command_id(event.event_id, step),
            correlation_id=transfer_id,
            causation_id=event.event_id,
            actor=self._actor,
        )
        try:
            await self._sender.handle(command, context)
        except DomainError as error:
            if not is_rejection(error):
                raise
            return error
        return None

    async def _send_expecting_success(
        self, command: Any, event: RecordedEvent, step: str, transfer_id: str
    ) -> None:
        # A rejection here means the workflow cannot go on (a bug or a rule the
        # workflow does not know): raise, so the consumer stops and reports it.
        error = await self._send(command, event, step, transfer_id)
        if error is not None:
            raise error

    async def _request(self, transfer_id: str) -> dict[str, Any]:
        """The ``TransferRequested`` data of ``transfer_id`` (cached, else its first event)."""
        cached = self._requests.get(transfer_id)
        if cached is not None:
            return cached
        first = await self._store.read_stream(transfer_id, 1, 1)
        if not first or first[0].type != "TransferRequested":
            raise LookupError(f"transfer {transfer_id} has no TransferRequested event")
        data = payload(self._registry, first[0])
        self._remember(transfer_id, data)
        return data

    def _remember(self, transfer_id: str, data: dict[str, Any]) -> None:
        self._requests[transfer_id] = data
        self._requests.move_to_end(transfer_id)
        if len(self._requests) > self._cache_size:
            self._requests.popitem(last=False)


def _reason(error: DomainError) -> str:
    return error.code


STEPS: dict[str, Step] = {
    "TransferRequested": TransferManager.on_requested,
    "MoneyDebitedForTransfer": TransferManager.on_debited,
    "TransferDebited": TransferManager.on_transfer_debited,
    "MoneyCreditedForTransfer": TransferManager.on_credited,
    "TransferCreditRefused": TransferManager.on_credit_refused,
    "MoneyRefundedForTransfer": TransferManager.on_refunded,
}
