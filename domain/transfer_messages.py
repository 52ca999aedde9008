"""Transfer commands (imperative) and events (past tense): frozen plain values.

Import these from ``domain.transfer``, which re-exports them.
"""

from __future__ import annotations

import dataclasses

# Commands -------------------------------------------------------------------


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


# Events ---------------------------------------------------------------------


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

TRANSFER_COMMANDS: tuple[type, ...] = (
    RequestTransfer,
    MarkTransferDebited,
    RefuseTransferCredit,
    MarkTransferRefunded,
    CompleteTransfer,
    FailTransfer,
    ParkTransfer,
    RetryTransfer,
)
TRANSFER_EVENTS: tuple[type, ...] = (
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
