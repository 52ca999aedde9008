"""The transfers feature's read side: the ``transfers`` read model and the transfer process manager.

The ``transfers`` read model: one document per transfer, as of its stream version.

``{_id: transfer_id, from_account_id, to_account_id, amount, currency|None,
status "REQUESTED"|"DEBITED"|"COMPLETED"|"FAILED"|"NEEDS_ATTENTION",
reason|None, parked_step|None, parked_attempt, version, position,
requested_at, updated_at}``. A refused credit keeps the status ``DEBITED``
with its ``reason`` until the refund fails the transfer. A parked transfer
(a step failed permanently) is ``NEEDS_ATTENTION`` with the failing
``parked_step`` and its ``reason``, until a retry or the workflow moving on
gives it its own status back; ``parked_attempt`` is the park a retry names.
Documents written before parking existed lack the parked fields: read as none.

``transfer_manager``, the transfer process manager: moves the money of each requested
transfer, exactly once.

It reacts to events in global order and sends the next command of the
workflow. Each reaction is one *step*, named after what it does:

    TransferRequested           "debit"          DebitForTransfer(source) | refused -> FailTransfer
    MoneyDebitedForTransfer     "mark-debited"   MarkTransferDebited
    TransferDebited             "credit"         CreditForTransfer(target) | refused ->
                                                 RefuseTransferCredit
    MoneyCreditedForTransfer    "complete"       CompleteTransfer
    TransferCreditRefused       "refund"         RefundForTransfer(source)
    TransferDebitedAfterFailure "refund"         RefundForTransfer(source)
    MoneyRefundedForTransfer    "mark-refunded"  MarkTransferRefunded
    TransferStepRetried         (its step)       the step again, under new command ids

Guarantees, with two instances running at once (a stale lease holder resumed
after a pause) as much as with one:

- Every command's id is derived from the triggering event's id and the step,
  so a redelivered event, or the same event handled by a twin, sends the same
  command id: the write side gives every copy the one outcome of that id, and
  money moves at most once. Leg commands are idempotent on the account too.
- A compensation cannot be refused: a refund is not subject to the balance
  limit nor to the account being closed (``domain.accounts``), and a debit
  that lands after its transfer failed is refunded
  (``TransferDebitedAfterFailure``).
- A step refused for good (a business rejection where the workflow expected
  success) never stops the manager: the transfer is parked (``ParkTransfer``
  -> ``NEEDS_ATTENTION`` with the step and reason) and every other transfer
  goes on. ``RetryTransfer`` (sent by ``retry_parked``, which
  ``retryProjection(name: "transfer_manager")`` and ``ledger projections retry
  transfer_manager`` call) lifts the park; the manager then decides the step
  again under command ids derived from the ``TransferStepRetried`` event: a
  new decision against today's state, never the stored rejection replayed.

Causation id = the event id, correlation id = the transfer id. A
``ConcurrencyConflict`` (retries exhausted) is not a business rejection: it
propagates, and the consumer retries the event. Any other unexpected error
(a bug, a lost database) also propagates: the consumer retries, then stops
and reports it.

``READ_SIDE`` registers both, the ``TransfersView`` the API queries and the live
``transfer:<id>`` topic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.service import CommandContext
from domain.accounts import CreditForTransfer, DebitForTransfer, RefundForTransfer
from domain.aggregate import DomainError
from domain.codec import EventRegistry
from domain.transfers import (
    CompleteTransfer,
    FailTransfer,
    MarkTransferDebited,
    MarkTransferRefunded,
    ParkTransfer,
    RefuseTransferCredit,
    RetryTransfer,
)
from domain.validation import MAX_REASON_LENGTH
from projections.documents import MAX_PAGE_SIZE, DocumentStore, Page, PageSpec, Query, fetch_page
from projections.live import topic_for
from projections.projector import (
    AttentionCounter,
    CommandSender,
    ConsumerDeps,
    ConsumerSpec,
    FieldsOf,
    Followup,
    LiveSpec,
    ReadSide,
    StreamDocumentsProjector,
    iso,
    parse_time,
    payload,
)
from store.protocol import EventStore, RecordedEvent

# -- transfers: one document per transfer ----------------------------------------------

NAME = "transfers"
NEEDS_ATTENTION = "NEEDS_ATTENTION"
STATUSES = frozenset({"REQUESTED", "DEBITED", "COMPLETED", "FAILED", NEEDS_ATTENTION})
_UNPARKED = {"parked_step": None}
INDEXES = [
    [("status", 1), ("requested_at", -1)],
    [("from_account_id", 1), ("requested_at", -1)],
    [("to_account_id", 1), ("requested_at", -1)],
    [("requested_at", -1)],
]


def _requested(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_account_id": data["from_account_id"],
        "to_account_id": data["to_account_id"],
        "amount": data["amount"],
        "currency": None,
        "status": "REQUESTED",
        "reason": None,
        "parked_step": None,
        "parked_attempt": 0,
        "requested_at": iso(event.recorded_at),
    }


# Every workflow event lifts a park (as the aggregate does), so each one sets
# the transfer's own status again.


def _debited(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "DEBITED", "currency": data["currency"], **_UNPARKED}


def _credit_refused(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "DEBITED", "reason": data["reason"], **_UNPARKED}


def _refunded(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    # Either half of a refund-and-fail commit, or the refund of a late debit of a
    # transfer that had already failed: the status is FAILED either way.
    return {"status": "FAILED", **_UNPARKED}


def _completed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "COMPLETED", **_UNPARKED}


def _failed(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "FAILED", "reason": data["reason"], **_UNPARKED}


def _debited_after_failure(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "FAILED", "currency": data["currency"], **_UNPARKED}


def _parked(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": NEEDS_ATTENTION,
        "reason": data["reason"],
        "parked_step": data["step"],
        "parked_attempt": data["attempt"],
    }


def _retried(event: RecordedEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": data["status"], "reason": data["reason"], **_UNPARKED}


FIELDS: dict[str, FieldsOf] = {
    "TransferRequested": _requested,
    "TransferDebited": _debited,
    "TransferCreditRefused": _credit_refused,
    "TransferRefunded": _refunded,
    "TransferCompleted": _completed,
    "TransferFailed": _failed,
    "TransferDebitedAfterFailure": _debited_after_failure,
    "TransferParked": _parked,
    "TransferStepRetried": _retried,
}


class TransfersProjector(StreamDocumentsProjector):
    """Projects transfer events into ``transfers`` (or the fixed ``physical`` collection)."""

    name = NAME
    indexes = INDEXES
    stream_type = "transfer"
    fields = FIELDS


@dataclass(frozen=True)
class TransferRecord:
    id: str
    from_account_id: str
    to_account_id: str
    amount: int
    currency: str | None
    status: str
    reason: str | None
    version: int
    position: int
    requested_at: datetime
    updated_at: datetime
    parked_step: str | None = None
    parked_attempt: int = 0

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TransferRecord:
        return cls(
            id=doc["_id"],
            from_account_id=doc["from_account_id"],
            to_account_id=doc["to_account_id"],
            amount=int(doc["amount"]),
            currency=doc.get("currency"),
            status=doc["status"],
            reason=doc.get("reason"),
            version=int(doc["version"]),
            position=int(doc["position"]),
            requested_at=parse_time(doc["requested_at"]),
            updated_at=parse_time(doc["updated_at"]),
            parked_step=doc.get("parked_step"),
            parked_attempt=int(doc.get("parked_attempt") or 0),
        )


class TransfersView:
    """Transfers by id, and pages newest first, filtered by status and/or account."""

    def __init__(self, documents: DocumentStore, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self._docs = documents
        self._spec = PageSpec(
            "transfers", [("requested_at", -1), ("_id", -1)], max_size=max_page_size
        )

    async def get(self, transfer_id: str) -> TransferRecord | None:
        doc = await self._docs.get(await self._docs.resolve(NAME), transfer_id)
        return TransferRecord.from_doc(doc) if doc is not None else None

    async def count_parked(self, cap: int) -> int:
        """How many transfers are ``NEEDS_ATTENTION``, counted up to ``cap`` (a bounded read)."""
        collection = await self._docs.resolve(NAME)
        query = Query({"status": NEEDS_ATTENTION}, limit=cap)
        return len(await self._docs.find(collection, query))

    async def list(
        self,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: str | None = None,
        account_id: str | None = None,
    ) -> Page[TransferRecord]:
        """``account_id`` matches transfers from or to the account."""
        where = {"status": status} if status is not None else {}
        any_of = (
            [{"from_account_id": account_id}, {"to_account_id": account_id}]
            if account_id is not None
            else []
        )
        collection = await self._docs.resolve(NAME)
        return await fetch_page(
            self._docs,
            collection,
            self._spec,
            TransferRecord.from_doc,
            first=first,
            after=after,
            last=last,
            before=before,
            where=where,
            any_of=any_of,
        )


# -- transfer_manager: the process manager ---------------------------------------------

MANAGER = "transfer_manager"
ACTOR = "transfer-manager"
TRANSIENT_CODES = frozenset({"concurrency_conflict"})
RETRY_BATCH = 1_000
"""Most parked transfers one ``retry_parked`` call retries (each request is bounded)."""
_NAMESPACE = uuid.UUID("6f1c3d2e-1b7a-4f0e-9a57-2d6c8b4e1f90")


def derived_command_id(event_id: str, step: str) -> str:
    """The same ``cmd-<32 hex>`` id every time ``step`` reacts to ``event_id``."""
    return f"cmd-{uuid.uuid5(_NAMESPACE, f'{event_id}/{step}').hex}"


def retry_command_id(transfer_id: str, attempt: int) -> str:
    """The id of the ``RetryTransfer`` lifting park ``attempt``: one retry per park."""
    return derived_command_id(f"{transfer_id}/park-{attempt}", "retry")


def is_rejection(error: DomainError) -> bool:
    """A business rejection (not a transient conflict worth retrying)."""
    return error.code not in TRANSIENT_CODES


class _Cause:
    """The event a step reacts to: what every command of the step is derived from."""

    __slots__ = ("event_id", "traceparent", "transfer_id")

    def __init__(self, event: RecordedEvent, transfer_id: str) -> None:
        self.event_id = event.event_id
        self.transfer_id = transfer_id
        # The step's commands continue the trace of the request behind the event.
        self.traceparent = event.metadata.traceparent


Step = Callable[["TransferManager", _Cause, dict[str, Any]], Awaitable[None]]


class TransferManager:
    """An ``EventHandler`` for the consumer runtime; stateless apart from a request cache."""

    name = MANAGER

    def __init__(
        self,
        sender: CommandSender,
        store: EventStore,
        *,
        registry: EventRegistry,
        actor: str = ACTOR,
        cache_size: int = 10_000,
        concurrency: int = 8,
    ) -> None:
        self._sender = sender
        self._store = store
        self._registry = registry
        self._actor = actor
        self._requests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._currencies: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._concurrency = max(concurrency, 1)

    async def prepare(self) -> None:
        return None

    def accepts(self, event: RecordedEvent) -> bool:
        """Whether ``handle_batch`` reacts to ``event`` (see ``EventHandler``)."""
        return event.type in TRIGGERS

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """React to ``events``: in order per transfer, different transfers concurrently.

        If any reaction fails the batch fails, and the consumer retries its events
        one by one, in order (a reaction that already happened is deduplicated).
        """
        by_transfer: dict[str, list[tuple[Step, _Cause, dict[str, Any]]]] = {}
        for event in events:
            if event.type not in TRIGGERS:
                continue
            data = payload(self._registry, event)
            step_name = (
                data["step"] if event.type == "TransferStepRetried" else TRIGGERS[event.type]
            )
            step = STEPS.get(step_name)
            if step is None:
                raise LookupError(f"unknown transfer step {step_name!r} in {event.event_id}")
            if event.type == "TransferRequested":
                self._remember(self._requests, data["transfer_id"], data)
            cause = _Cause(event, data["transfer_id"])
            by_transfer.setdefault(cause.transfer_id, []).append((step, cause, data))
        limit = asyncio.Semaphore(self._concurrency)

        async def run(reactions: list[tuple[Step, _Cause, dict[str, Any]]]) -> None:
            async with limit:
                for step, cause, data in reactions:
                    await step(self, cause, data)

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
    # ``data`` is the triggering event's payload; a retried step gets the
    # ``TransferStepRetried`` payload, so every input is looked up from the
    # transfer's request and its source account, never taken from ``data``.

    async def debit(self, cause: _Cause, data: dict[str, Any]) -> None:
        request = await self._request(cause.transfer_id)
        debit = DebitForTransfer(request["from_account_id"], cause.transfer_id, request["amount"])
        error = await self._send(debit, cause, "debit")
        if error is not None:
            fail = FailTransfer(cause.transfer_id, _reason(error))
            await self._send_or_park(fail, cause, "fail", "debit")

    async def mark_debited(self, cause: _Cause, data: dict[str, Any]) -> None:
        mark = MarkTransferDebited(cause.transfer_id, await self._currency(cause.transfer_id))
        await self._send_or_park(mark, cause, "mark-debited", "mark-debited")

    async def credit(self, cause: _Cause, data: dict[str, Any]) -> None:
        request = await self._request(cause.transfer_id)
        currency = await self._currency(cause.transfer_id)
        target = request["to_account_id"]
        credit = CreditForTransfer(target, cause.transfer_id, request["amount"], currency)
        error = await self._send(credit, cause, "credit")
        if error is not None:
            refuse = RefuseTransferCredit(cause.transfer_id, _reason(error))
            await self._send_or_park(refuse, cause, "refuse-credit", "credit")

    async def complete(self, cause: _Cause, data: dict[str, Any]) -> None:
        complete = CompleteTransfer(cause.transfer_id)
        await self._send_or_park(complete, cause, "complete", "complete")

    async def refund(self, cause: _Cause, data: dict[str, Any]) -> None:
        request = await self._request(cause.transfer_id)
        source = request["from_account_id"]
        refund = RefundForTransfer(source, cause.transfer_id, request["amount"])
        await self._send_or_park(refund, cause, "refund", "refund")

    async def mark_refunded(self, cause: _Cause, data: dict[str, Any]) -> None:
        mark = MarkTransferRefunded(cause.transfer_id)
        await self._send_or_park(mark, cause, "mark-refunded", "mark-refunded")

    # -- sending -----------------------------------------------------------------

    async def _send(self, command: Any, cause: _Cause, action: str) -> DomainError | None:
        """Send ``command`` under the id derived from ``cause``; return its rejection, if any."""
        context = CommandContext(
            command_id=derived_command_id(cause.event_id, action),
            correlation_id=cause.transfer_id,
            causation_id=cause.event_id,
            actor=self._actor,
            traceparent=cause.traceparent,
        )
        try:
            await self._sender.handle(command, context)
        except DomainError as error:
            if not is_rejection(error):
                raise
            return error
        return None

    async def _send_or_park(self, command: Any, cause: _Cause, action: str, step: str) -> None:
        """Send a command the workflow needs to succeed; if it is refused, park ``step``.

        A refusal here is a rule the workflow does not expect (or a twin's
        effect): retrying the event would replay the same stored rejection, so
        the transfer waits for an operator and the manager goes on.
        """
        error = await self._send(command, cause, action)
        if error is None:
            return
        reason = f"{action} refused: {error.code}: {error.message}"[:MAX_REASON_LENGTH]
        park = ParkTransfer(cause.transfer_id, step, reason)
        refused = await self._send(park, cause, "park")
        if refused is not None:
            raise refused  # not even parkable (no such transfer): a bug, stop and report

    # -- inputs --------------------------------------------------------------------

    async def _request(self, transfer_id: str) -> dict[str, Any]:
        """The ``TransferRequested`` data of ``transfer_id`` (cached, else its first event)."""
        cached = self._requests.get(transfer_id)
        if cached is not None:
            return cached
        first = await self._store.read_stream(transfer_id, 1, 1)
        if not first or first[0].type != "TransferRequested":
            raise LookupError(f"transfer {transfer_id} has no TransferRequested event")
        data = payload(self._registry, first[0])
        self._remember(self._requests, transfer_id, data)
        return data

    async def _currency(self, transfer_id: str) -> str:
        """The transfer's currency: its source account's (a debit always takes that one)."""
        source = (await self._request(transfer_id))["from_account_id"]
        cached = self._currencies.get(source)
        if cached is not None:
            return cached
        first = await self._store.read_stream(source, 1, 1)
        if not first or first[0].type != "AccountOpened":
            raise LookupError(f"account {source} has no AccountOpened event")
        currency = str(payload(self._registry, first[0])["currency"])
        self._remember(self._currencies, source, currency)
        return currency

    def _remember(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def _reason(error: DomainError) -> str:
    return error.code


TRIGGERS: dict[str, str] = {
    "TransferRequested": "debit",
    "MoneyDebitedForTransfer": "mark-debited",
    "TransferDebited": "credit",
    "MoneyCreditedForTransfer": "complete",
    "TransferCreditRefused": "refund",
    "TransferDebitedAfterFailure": "refund",
    "MoneyRefundedForTransfer": "mark-refunded",
    "TransferStepRetried": "",  # the step named in the event
}
"""Event type -> the step it triggers."""

STEPS: dict[str, Step] = {
    "debit": TransferManager.debit,
    "mark-debited": TransferManager.mark_debited,
    "credit": TransferManager.credit,
    "complete": TransferManager.complete,
    "refund": TransferManager.refund,
    "mark-refunded": TransferManager.mark_refunded,
}


async def retry_parked(
    sender: CommandSender, transfers: TransfersView, *, limit: int = RETRY_BATCH
) -> int:
    """Send ``RetryTransfer`` for up to ``limit`` parked transfers; return how many.

    Each retry's command id is derived
    from the transfer and its park attempt, so a repeated request (or two
    operators at once) lifts each park once. Refusals are not expected (a
    stale park is a no-op) and are skipped.
    """
    sent, after = 0, None
    while sent < limit:
        page = await transfers.list(
            first=min(limit - sent, 100), after=after, status=NEEDS_ATTENTION
        )
        for record in page.nodes:
            context = CommandContext(
                command_id=retry_command_id(record.id, record.parked_attempt),
                correlation_id=record.id,
                actor="operator",
            )
            try:
                await sender.handle(RetryTransfer(record.id, record.parked_attempt), context)
            except DomainError as error:
                if not is_rejection(error):
                    raise
            sent += 1
        if not page.has_next_page:
            break
        after = page.end_cursor
    return sent


# -- the read side ---------------------------------------------------------------------


def _transfers(deps: ConsumerDeps, physical: str | None) -> TransfersProjector:
    return TransfersProjector(
        deps.documents, registry=deps.registry, hub=deps.hub, physical=physical
    )


def _manager(deps: ConsumerDeps, physical: str | None) -> TransferManager:
    if deps.sender is None:
        raise ValueError("the transfer manager sends commands: it needs a sender")
    return TransferManager(deps.sender, deps.store, registry=deps.registry)


def _parked_count(documents: DocumentStore) -> AttentionCounter:
    return TransfersView(documents).count_parked


def _retry_parked(sender: CommandSender, documents: DocumentStore) -> Followup:
    """Retrying the transfer manager re-decides the steps of parked transfers."""
    view = TransfersView(documents)

    async def followup() -> int:
        return await retry_parked(sender, view)

    return followup


def _views(documents: DocumentStore, max_page_size: int) -> tuple[object, ...]:
    return (TransfersView(documents, max_page_size=max_page_size),)


def _route(event: RecordedEvent) -> tuple[str, ...]:
    return (topic_for("transfer", event.stream_id),) if event.stream_type == "transfer" else ()


READ_SIDE = ReadSide(
    consumers=(
        ConsumerSpec(NAME, _transfers),
        ConsumerSpec(
            MANAGER,
            _manager,
            read_model=False,
            attention=_parked_count,
            retry_followup=_retry_parked,
        ),
    ),
    views=_views,
    live=(LiveSpec("transfer", NAME, lambda documents: TransfersView(documents).get, _route),),
)
