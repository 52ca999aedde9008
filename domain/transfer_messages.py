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


TransferCommand = (
    RequestTransfer
    | MarkTransferDebited
    | RefuseTransferCredit
    | MarkTransferRefunded
    | CompleteTransfer
    | FailTransfer
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


TransferEvent = (
    TransferRequested
    | TransferDebited
    | TransferCreditRefused
    | TransferRefunded
    | TransferCompleted
    | TransferFailed
)

TRANSFER_COMMANDS: tuple[type, ...] = (
    RequestTransfer,
    MarkTransferDebited,
    RefuseTransferCredit,
    MarkTransferRefunded,
    CompleteTransfer,
    FailTransfer,
)
TRANSFER_EVENTS: tuple[type, ...] = (
    TransferRequested,
    TransferDebited,
    TransferCreditRefused,
    TransferRefunded,
    TransferCompleted,
    TransferFailed,
)
