"""The transfers feature's domain: the Transfer aggregate as a decider, ``TRANSFER``
(stream type "transfer"), its commands, events and rejections, exported as ``DOMAIN``.

The stream id is the transfer id. A process manager drives it:

    REQUESTED --MarkTransferDebited--> DEBITED --CompleteTransfer--> COMPLETED
    REQUESTED --FailTransfer (debit refused)--> FAILED
    DEBITED --RefuseTransferCredit--> DEBITED (credit_refused)
            --MarkTransferRefunded--> FAILED (TransferRefunded + TransferFailed, one commit)
    FAILED (never debited) --MarkTransferDebited--> FAILED (TransferDebitedAfterFailure)
            --MarkTransferRefunded--> FAILED (TransferRefunded)

Invariants: from != to; amount rules as for accounts; a transfer completes or
fails exactly once; a refund only follows a debit whose credit was refused, or
a debit that landed after the transfer failed (a stale copy of the process
manager debited on its own); every debit of a failed transfer is refunded. A
step repeated after it took effect yields no events; an impossible step raises
``InvalidTransferState``.

Parking: when a step fails permanently the process manager parks the transfer
(``ParkTransfer`` -> ``TransferParked``, read as ``NEEDS_ATTENTION``) and goes
on with other transfers. ``RetryTransfer`` lifts the current park
(``TransferStepRetried``) and the manager decides the step again under new
command ids. Any workflow event also lifts a park: the workflow moved on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from domain.aggregate import Domain, DomainError, InvalidInput
from domain.money import check_amount, parse_currency
from domain.validation import check_id, check_reason, check_text

# rejections -----------------------------------------------------------------


class TransferNotFound(DomainError):
    code = "transfer_not_found"

    def __init__(self, transfer_id: str, message: str | None = None) -> None:
        super().__init__(message or f"transfer {transfer_id} not found", transfer_id=transfer_id)
        self.transfer_id = transfer_id


class TransferAlreadyExists(DomainError):
    code = "transfer_already_exists"

    def __init__(self, transfer_id: str, message: str | None = None) -> None:
        text = message or f"transfer {transfer_id} already exists"
        super().__init__(text, transfer_id=transfer_id)
        self.transfer_id = transfer_id


class InvalidTransferState(DomainError):
    """A transfer step is impossible now: ``status`` is what was found, ``action`` what was asked.

    Raised by the transfer (status "REQUESTED", "DEBITED"...) and by an
    account asked for an impossible leg (status "NOT_DEBITED", "CREDITED"...).
    """

    code = "invalid_transfer_state"

    def __init__(
        self, transfer_id: str, status: str, action: str, message: str | None = None
    ) -> None:
        text = message or f"transfer {transfer_id} is {status}: cannot {action}"
        super().__init__(text, transfer_id=transfer_id, status=status, action=action)
        self.transfer_id = transfer_id
        self.status = status
        self.action = action


# commands -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RequestTransfer:
    transfer_id: str
    from_account_id: str
    to_account_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class MarkTransferDebited:
    """The source account was debited; ``currency`` is the source account's."""

    transfer_id: str
    currency: str


@dataclasses.dataclass(frozen=True)
class RefuseTransferCredit:
    """The destination refused the credit; the source must now be refunded."""

    transfer_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class MarkTransferRefunded:
    """The source was refunded: records ``TransferRefunded`` then ``TransferFailed``."""

    transfer_id: str


@dataclasses.dataclass(frozen=True)
class CompleteTransfer:
    transfer_id: str


@dataclasses.dataclass(frozen=True)
class FailTransfer:
    """Only before any debit (the debit was refused); after a debit, refund instead."""

    transfer_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ParkTransfer:
    """A workflow ``step`` failed permanently (``reason``): an operator must look.

    The process manager sends it instead of stopping; every other transfer goes on.
    """

    transfer_id: str
    step: str
    reason: str


@dataclasses.dataclass(frozen=True)
class RetryTransfer:
    """Decide the parked step again; ``attempt`` names the park being retried.

    A retry of a park that is no longer current (already retried, or the
    workflow moved on) yields no events, so repeating a retry is harmless.
    """

    transfer_id: str
    attempt: int


TransferCommand = (
    RequestTransfer
    | MarkTransferDebited
    | RefuseTransferCredit
    | MarkTransferRefunded
    | CompleteTransfer
    | FailTransfer
    | ParkTransfer
    | RetryTransfer
)


# events ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TransferRequested:
    transfer_id: str
    from_account_id: str
    to_account_id: str
    amount: int


@dataclasses.dataclass(frozen=True)
class TransferDebited:
    transfer_id: str
    currency: str


@dataclasses.dataclass(frozen=True)
class TransferCreditRefused:
    transfer_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class TransferRefunded:
    transfer_id: str


@dataclasses.dataclass(frozen=True)
class TransferCompleted:
    transfer_id: str


@dataclasses.dataclass(frozen=True)
class TransferFailed:
    transfer_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class TransferDebitedAfterFailure:
    """The source was debited after the transfer had failed (a stale twin's debit).

    The money is held by nothing: the process manager refunds it, and the
    transfer stays ``FAILED``.
    """

    transfer_id: str
    currency: str


@dataclasses.dataclass(frozen=True)
class TransferParked:
    """``step`` failed permanently for ``reason``; ``attempt`` counts the parks (1, 2...)."""

    transfer_id: str
    step: str
    reason: str
    attempt: int


@dataclasses.dataclass(frozen=True)
class TransferStepRetried:
    """Park ``attempt`` of ``step`` is lifted: the step is decided again.

    ``status`` and ``reason`` are the transfer's own again (as before the park).
    """

    transfer_id: str
    step: str
    attempt: int
    status: str
    reason: str | None


TransferEvent = (
    TransferRequested
    | TransferDebited
    | TransferCreditRefused
    | TransferRefunded
    | TransferCompleted
    | TransferFailed
    | TransferDebitedAfterFailure
    | TransferParked
    | TransferStepRetried
)

COMMANDS: tuple[type, ...] = (
    RequestTransfer,
    MarkTransferDebited,
    RefuseTransferCredit,
    MarkTransferRefunded,
    CompleteTransfer,
    FailTransfer,
    ParkTransfer,
    RetryTransfer,
)
EVENTS: tuple[type, ...] = (
    TransferRequested,
    TransferDebited,
    TransferCreditRefused,
    TransferRefunded,
    TransferCompleted,
    TransferFailed,
    TransferDebitedAfterFailure,
    TransferParked,
    TransferStepRetried,
)


# state ----------------------------------------------------------------------


TransferStatus = Literal["REQUESTED", "DEBITED", "COMPLETED", "FAILED"]
_STATUSES = ("REQUESTED", "DEBITED", "COMPLETED", "FAILED")
Events = list[TransferEvent]
MAX_STEP_LENGTH = 50


@dataclasses.dataclass(frozen=True)
class TransferState:
    """``exists`` is false before ``TransferRequested``; ``amount`` is int minor units.

    ``currency`` is known once debited; ``reason`` once the credit was refused
    or the transfer failed. ``late_debit``: debited after it failed (a refund
    is owed). ``parked_step``/``parked_reason``: the step that failed
    permanently, while parked; ``parks`` counts the parks so far.
    """

    exists: bool = False
    transfer_id: str = ""
    from_account_id: str = ""
    to_account_id: str = ""
    amount: int = 0
    currency: str | None = None
    status: TransferStatus = "REQUESTED"
    reason: str | None = None
    credit_refused: bool = False
    refunded: bool = False
    late_debit: bool = False
    parked_step: str | None = None
    parked_reason: str | None = None
    parks: int = 0


def _require(state: TransferState, transfer_id: str) -> None:
    if not state.exists:
        raise TransferNotFound(transfer_id)


def _impossible(state: TransferState, action: str) -> InvalidTransferState:
    status = "CREDIT_REFUSED" if state.credit_refused and not state.refunded else state.status
    return InvalidTransferState(state.transfer_id, status, action)


# decide ---------------------------------------------------------------------


def _request(state: TransferState, cmd: RequestTransfer) -> Events:
    transfer_id = check_id(cmd.transfer_id, "transfer_id")
    source = check_id(cmd.from_account_id, "from_account_id")
    target = check_id(cmd.to_account_id, "to_account_id")
    if source == target:
        raise InvalidInput("to_account_id", "a transfer needs two different accounts", value=target)
    amount = check_amount(cmd.amount)
    if state.exists:
        raise TransferAlreadyExists(transfer_id)
    return [TransferRequested(transfer_id, source, target, amount)]


def _mark_debited(state: TransferState, cmd: MarkTransferDebited) -> Events:
    currency = parse_currency(cmd.currency)
    _require(state, cmd.transfer_id)
    if state.status == "REQUESTED":
        return [TransferDebited(state.transfer_id, currency)]
    if state.currency == currency:
        return []  # already debited: a replay
    if state.status == "FAILED" and state.currency is None:
        # A stale copy of the process manager debited after the debit was seen
        # refused and the transfer failed: record it so the money is refunded.
        return [TransferDebitedAfterFailure(state.transfer_id, currency)]
    raise _impossible(state, "mark debited")


def _refuse_credit(state: TransferState, cmd: RefuseTransferCredit) -> Events:
    reason = check_reason(cmd.reason)
    _require(state, cmd.transfer_id)
    if state.credit_refused:
        return []
    if state.status == "DEBITED":
        return [TransferCreditRefused(state.transfer_id, reason)]
    raise _impossible(state, "refuse credit")


def _mark_refunded(state: TransferState, cmd: MarkTransferRefunded) -> Events:
    _require(state, cmd.transfer_id)
    if state.refunded:
        return []
    if state.status == "DEBITED" and state.credit_refused:
        reason = state.reason or "credit refused"
        return [TransferRefunded(state.transfer_id), TransferFailed(state.transfer_id, reason)]
    if state.status == "FAILED" and state.late_debit:
        return [TransferRefunded(state.transfer_id)]
    raise _impossible(state, "mark refunded")


def _complete(state: TransferState, cmd: CompleteTransfer) -> Events:
    _require(state, cmd.transfer_id)
    if state.status == "COMPLETED":
        return []
    if state.status == "DEBITED" and not state.credit_refused:
        return [TransferCompleted(state.transfer_id)]
    raise _impossible(state, "complete")


def _fail(state: TransferState, cmd: FailTransfer) -> Events:
    reason = check_reason(cmd.reason)
    _require(state, cmd.transfer_id)
    if state.status == "FAILED":
        return []
    if state.status == "REQUESTED":
        return [TransferFailed(state.transfer_id, reason)]
    raise _impossible(state, "fail")


def _park(state: TransferState, cmd: ParkTransfer) -> Events:
    step = check_text(cmd.step, "step", MAX_STEP_LENGTH)
    reason = check_reason(cmd.reason)
    _require(state, cmd.transfer_id)
    if state.parked_step is not None:
        return []  # already waiting for an operator
    return [TransferParked(state.transfer_id, step, reason, state.parks + 1)]


def _retry(state: TransferState, cmd: RetryTransfer) -> Events:
    attempt = cmd.attempt
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise InvalidInput("attempt", "attempt must be a positive integer", value=None)
    _require(state, cmd.transfer_id)
    if state.parked_step is None or attempt != state.parks:
        return []  # that park was already lifted
    return [
        TransferStepRetried(
            state.transfer_id, state.parked_step, attempt, state.status, state.reason
        )
    ]


_DECIDE: dict[type, Callable[[TransferState, Any], Events]] = {
    RequestTransfer: _request,
    MarkTransferDebited: _mark_debited,
    RefuseTransferCredit: _refuse_credit,
    MarkTransferRefunded: _mark_refunded,
    CompleteTransfer: _complete,
    FailTransfer: _fail,
    ParkTransfer: _park,
    RetryTransfer: _retry,
}


# evolve ---------------------------------------------------------------------


def _requested(state: TransferState, e: TransferRequested) -> TransferState:
    return TransferState(True, e.transfer_id, e.from_account_id, e.to_account_id, e.amount)


def _moved(state: TransferState, **changes: Any) -> TransferState:
    """``state`` after a workflow event: ``changes`` applied, any park lifted."""
    return dataclasses.replace(state, parked_step=None, parked_reason=None, **changes)


def _debited(state: TransferState, e: TransferDebited) -> TransferState:
    return _moved(state, status="DEBITED", currency=e.currency)


def _credit_refused(state: TransferState, e: TransferCreditRefused) -> TransferState:
    return _moved(state, credit_refused=True, reason=e.reason)


def _refunded(state: TransferState, e: TransferRefunded) -> TransferState:
    return _moved(state, refunded=True)


def _completed(state: TransferState, e: TransferCompleted) -> TransferState:
    return _moved(state, status="COMPLETED")


def _failed(state: TransferState, e: TransferFailed) -> TransferState:
    return _moved(state, status="FAILED", reason=e.reason)


def _debited_after_failure(state: TransferState, e: TransferDebitedAfterFailure) -> TransferState:
    return _moved(state, currency=e.currency, late_debit=True)


def _parked(state: TransferState, e: TransferParked) -> TransferState:
    return dataclasses.replace(state, parked_step=e.step, parked_reason=e.reason, parks=e.attempt)


def _retried(state: TransferState, e: TransferStepRetried) -> TransferState:
    return dataclasses.replace(state, parked_step=None, parked_reason=None)


_EVOLVE: dict[type, Callable[[TransferState, Any], TransferState]] = {
    TransferRequested: _requested,
    TransferDebited: _debited,
    TransferCreditRefused: _credit_refused,
    TransferRefunded: _refunded,
    TransferCompleted: _completed,
    TransferFailed: _failed,
    TransferDebitedAfterFailure: _debited_after_failure,
    TransferParked: _parked,
    TransferStepRetried: _retried,
}


# snapshots ------------------------------------------------------------------


def _from_snapshot(data: Mapping[str, Any]) -> TransferState:
    fields = {f.name: data[f.name] for f in dataclasses.fields(TransferState)}
    if fields["status"] not in _STATUSES:
        raise ValueError(f"malformed transfer snapshot: status {fields['status']!r}")
    return TransferState(**fields)


class TransferDecider:
    """The Transfer aggregate; see the module docstring for its states and invariants."""

    stream_type: str = "transfer"
    snapshot_version: int = 2

    def stream_id(self, command: TransferCommand) -> str:
        return command.transfer_id

    def initial_state(self) -> TransferState:
        return TransferState()

    def evolve(self, state: TransferState, event: TransferEvent) -> TransferState:
        return _EVOLVE[type(event)](state, event)

    def decide(self, state: TransferState, command: TransferCommand) -> Sequence[TransferEvent]:
        handler = _DECIDE.get(type(command))
        if handler is None:
            raise TypeError(f"not a transfer command: {type(command).__name__}")
        return handler(state, command)

    def to_snapshot(self, state: TransferState) -> Mapping[str, Any]:
        return dataclasses.asdict(state)

    def from_snapshot(self, data: Mapping[str, Any]) -> TransferState:
        return _from_snapshot(data)


TRANSFER = TransferDecider()


DOMAIN = Domain(
    deciders=dict.fromkeys(COMMANDS, TRANSFER),
    events=EVENTS,
    errors=(TransferNotFound, TransferAlreadyExists, InvalidTransferState),
)
