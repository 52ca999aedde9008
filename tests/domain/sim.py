"""A pure, in-memory bank used by the property tests: deciders plus a tiny transfer saga.

It is test scaffolding, not production code: commands go through ``DECIDERS``,
each accepted event is folded into its stream's state and kept in ``log``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.accounts import DOMAIN as ACCOUNT_DOMAIN
from domain.accounts import CreditForTransfer, DebitForTransfer, RefundForTransfer
from domain.aggregate import DomainError, deciders
from domain.transfers import DOMAIN as TRANSFER_DOMAIN
from domain.transfers import (
    CompleteTransfer,
    FailTransfer,
    MarkTransferDebited,
    MarkTransferRefunded,
    RefuseTransferCredit,
    TransferState,
)

BANK = (ACCOUNT_DOMAIN, TRANSFER_DOMAIN)
DECIDERS = deciders(BANK)


@dataclasses.dataclass
class Bank:
    states: dict[tuple[str, str], Any] = dataclasses.field(default_factory=dict)
    log: list[Any] = dataclasses.field(default_factory=list)

    def state(self, stream_type: str, stream_id: str) -> Any:
        for decider in DECIDERS.values():
            if decider.stream_type == stream_type:
                return self.states.get((stream_type, stream_id), decider.initial_state())
        raise KeyError(stream_type)

    def handle(self, command: Any) -> list[Any] | DomainError:
        """Decide and fold; a rejection is returned (and must have changed nothing)."""
        decider = DECIDERS[type(command)]
        key = (decider.stream_type, decider.stream_id(command))
        state = self.states.get(key, decider.initial_state())
        try:
            events = list(decider.decide(state, command))
        except DomainError as error:
            return error
        for event in events:
            state = decider.evolve(state, event)
        self.states[key] = state
        self.log.extend(events)
        return events

    def step(self, transfer_id: str) -> None:
        """Advance a transfer by one step, as the transfer manager would."""
        transfer: TransferState = self.state("transfer", transfer_id)
        if not transfer.exists or transfer.status in ("COMPLETED", "FAILED"):
            return
        if transfer.status == "REQUESTED":
            self._debit(transfer)
        elif transfer.credit_refused:
            refunded = self.handle(
                RefundForTransfer(transfer.from_account_id, transfer_id, transfer.amount)
            )
            if not isinstance(refunded, DomainError):
                self.handle(MarkTransferRefunded(transfer_id))
        else:
            self._credit(transfer)

    def _debit(self, t: TransferState) -> None:
        result = self.handle(DebitForTransfer(t.from_account_id, t.transfer_id, t.amount))
        if isinstance(result, DomainError):
            self.handle(FailTransfer(t.transfer_id, result.code))
        else:
            currency = self.state("account", t.from_account_id).currency
            self.handle(MarkTransferDebited(t.transfer_id, currency))

    def _credit(self, t: TransferState) -> None:
        assert t.currency is not None
        command = CreditForTransfer(t.to_account_id, t.transfer_id, t.amount, t.currency)
        result = self.handle(command)
        if isinstance(result, DomainError):
            self.handle(RefuseTransferCredit(t.transfer_id, result.code))
        else:
            self.handle(CompleteTransfer(t.transfer_id))
