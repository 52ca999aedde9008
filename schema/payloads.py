"""Success payloads of mutations: what happened, at which version and position.

``account`` / ``transfer`` are resolved only when selected: a client that
wants just the new version costs no extra read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from application.outcomes import CommandOutcome
from schema.context import Context
from schema.reads import rebuilt_account
from schema.types import Account, Transfer, TransferStatus, money


def _position(outcome: CommandOutcome) -> int | None:
    return outcome.events[-1].position if outcome.events else None


@strawberry.type(description="A command on an account was applied (or had been: `duplicate`).")
class AccountPayload:
    account_id: strawberry.ID
    version: int = strawberry.field(description="The account stream's version after the command.")
    position: int | None = strawberry.field(
        description="Global position of the command's last event; null until sequenced."
    )
    duplicate: bool = strawberry.field(
        description="True when this commandId had already been applied: the first outcome."
    )

    @strawberry.field
    async def account(self, info: strawberry.Info[Context]) -> Account:
        """The account's state right after the command (rebuilt from its events)."""
        return await rebuilt_account(info.context, str(self.account_id), self.version)

    @classmethod
    def from_outcome(cls, outcome: CommandOutcome) -> AccountPayload:
        return cls(
            account_id=strawberry.ID(outcome.stream_id),
            version=outcome.version,
            position=_position(outcome),
            duplicate=outcome.duplicate,
        )


@strawberry.type(description="A transfer was requested (or had been: `duplicate`).")
class TransferPayload:
    transfer: Transfer
    version: int
    position: int | None
    duplicate: bool

    @classmethod
    def from_outcome(cls, outcome: CommandOutcome) -> TransferPayload:
        """Built from the ``TransferRequested`` event, also for a duplicate's first commit."""
        first = outcome.events[0]
        data: Mapping[str, Any] = first.data
        transfer = Transfer(
            id=strawberry.ID(outcome.stream_id),
            from_account_id=strawberry.ID(str(data["from_account_id"])),
            to_account_id=strawberry.ID(str(data["to_account_id"])),
            amount=money(int(data["amount"])),
            currency=None,
            status=TransferStatus.REQUESTED,
            reason=None,
            version=first.version,
            position=first.position,
            requested_at=first.recorded_at,
            updated_at=first.recorded_at,
        )
        return cls(
            transfer=transfer,
            version=outcome.version,
            position=_position(outcome),
            duplicate=outcome.duplicate,
        )
