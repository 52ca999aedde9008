"""Success payloads of mutations: what happened, at which version and position.

``account`` / ``transfer`` are resolved only when selected: a client that
wants just the new version costs no extra read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from application.service import CommandOutcome
from schema.context import Context
from schema.reads import rebuilt_account
from schema.types import Account, Transfer, TransferStatus, money


def _position(outcome: CommandOutcome) -> int | None:
    return outcome.events[-1].position if outcome.events else None


async def current_position(
    ctx: Context, stream_id: str, version: int, known: int | None
) -> int | None:
    """The global position of a stream's event ``version``, once the sequencer stamped it.

    Stores that sequence after commit (MongoDB) return unstamped events from
    ``append``; by the time a client reads the payload the in-process
    sequencer has usually stamped them, so look once more (one indexed read).
    """
    if known is not None:
        return known
    events = await ctx.events.read_stream(stream_id, version, version)
    return events[0].position if events else None


POSITION = "Global position of the command's last event; null until sequenced."


async def _account_position(root: AccountPayload, info: strawberry.Info[Context]) -> int | None:
    return await current_position(
        info.context, str(root.account_id), root.version, root.known_position
    )


async def _account_after(root: AccountPayload, info: strawberry.Info[Context]) -> Account:
    return await rebuilt_account(info.context, str(root.account_id), root.version)


async def _transfer_position(root: TransferPayload, info: strawberry.Info[Context]) -> int | None:
    return await current_position(
        info.context, str(root.transfer.id), root.version, root.known_position
    )


@strawberry.type(description="A command on an account was applied (or had been: `duplicate`).")
class AccountPayload:
    account_id: strawberry.ID
    version: int = strawberry.field(description="The account stream's version after the command.")
    duplicate: bool = strawberry.field(
        description="True when this commandId had already been applied: the first outcome."
    )
    known_position: strawberry.Private[int | None]
    position: int | None = strawberry.field(resolver=_account_position, description=POSITION)
    account: Account = strawberry.field(
        resolver=_account_after, description="The account's state right after the command."
    )

    @classmethod
    def from_outcome(cls, outcome: CommandOutcome) -> AccountPayload:
        return cls(
            account_id=strawberry.ID(outcome.stream_id),
            version=outcome.version,
            duplicate=outcome.duplicate,
            known_position=_position(outcome),
        )


@strawberry.type(description="A transfer was requested (or had been: `duplicate`).")
class TransferPayload:
    transfer: Transfer
    version: int
    duplicate: bool
    known_position: strawberry.Private[int | None]
    position: int | None = strawberry.field(resolver=_transfer_position, description=POSITION)

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
            duplicate=outcome.duplicate,
            known_position=_position(outcome),
        )
