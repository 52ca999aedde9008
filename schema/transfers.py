"""The transfers feature's GraphQL API: the Transfer type, reads, ``requestTransfer``, live updates.

A transfer is visible to admins and to the owners of either account; a user
may request one only from an account they own. The transfer itself runs
asynchronously in the transfer process manager; clients follow it with
``transfer(id:)`` or ``transferChanged(id:)``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from application.repository import StreamTypeMismatch
from application.service import CommandOutcome
from domain.transfers import DOMAIN, TRANSFER, RequestTransfer, TransferState
from projections.live import topic_for
from projections.transfers import NAME as TRANSFERS_READ_MODEL
from projections.transfers import READ_SIDE, TransferRecord, TransfersView
from schema import errors as e
from schema._engine.inputs import flat_input
from schema.accounts import (
    account_access,
    check_account_id,
    owner_of,
    read_account,
    require_account,
)
from schema.app import Feature
from schema.commands import (
    POSITION,
    amount_of,
    check_command_id,
    command_context,
    current_position,
    first_error,
    last_position,
    new_id_for,
    send,
)
from schema.context import Context
from schema.errors import forbidden_query
from schema.reads import (
    NODE_ID,
    Consistency,
    Window,
    ensure_consistency,
    page_info,
    paged,
    plausible_id,
)
from schema.scalars import DecimalString, money
from schema.subscriptions import documents, live_of

TRANSFER_PREFIX = "trf-"

# -- types ----------------------------------------------------------------------------


@strawberry.enum
class TransferStatus(Enum):
    REQUESTED = "REQUESTED"
    DEBITED = "DEBITED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    NEEDS_ATTENTION = strawberry.enum_value(
        "NEEDS_ATTENTION",
        description="A step failed permanently (see `reason` and `parkedStep`); the transfer "
        'waits for an operator\'s `retryProjection(name: "transfer_manager")`.',
    )


@strawberry.type(description="A transfer between two accounts, run by a process manager.")
class Transfer(relay.Node):
    id: strawberry.ID = strawberry.field(description=NODE_ID)
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: DecimalString
    currency: str | None
    status: TransferStatus
    reason: str | None
    version: int
    position: int | None
    requested_at: datetime | None
    updated_at: datetime | None
    parked_step: str | None = strawberry.field(
        default=None,
        description="While NEEDS_ATTENTION: the workflow step that failed permanently.",
    )

    @classmethod
    def from_record(cls, record: TransferRecord) -> Transfer:
        return cls(
            id=strawberry.ID(record.id),
            from_account_id=strawberry.ID(record.from_account_id),
            to_account_id=strawberry.ID(record.to_account_id),
            amount=money(record.amount),
            currency=record.currency,
            status=TransferStatus(record.status),
            reason=record.reason,
            parked_step=record.parked_step if record.status == "NEEDS_ATTENTION" else None,
            version=record.version,
            position=record.position,
            requested_at=record.requested_at,
            updated_at=record.updated_at,
        )

    @classmethod
    def resolve_id(cls, root: Transfer, *, info: strawberry.Info) -> str:
        return str(root.id)


# strawberry names these generic types TransferConnection and TransferEdge.
TransferEdge = relay.Edge[Transfer]
TransferConnection = relay.Connection[Transfer]

# -- reads ----------------------------------------------------------------------------


async def _may_see_transfer(ctx: Context, record: TransferRecord) -> bool:
    if ctx.user.is_admin:
        return True
    for account_id in (record.from_account_id, record.to_account_id):
        if await read_account(ctx, account_id) is not None:
            return True
    return False


async def read_transfer(ctx: Context, transfer_id: str) -> Transfer | None:
    """The transfer from the read model; None when unknown or not the caller's to see."""
    if not plausible_id(transfer_id):
        return None
    record = await ctx.view(TransfersView).get(transfer_id)
    if record is None or not await _may_see_transfer(ctx, record):
        return None
    return Transfer.from_record(record)


async def transfers_page(
    ctx: Context,
    window: Window,
    status: TransferStatus | None,
    account_id: str | None,
) -> TransferConnection:
    if not ctx.user.is_admin:
        if account_id is None:
            raise forbidden_query("users must give accountId (one of their accounts)")
        if await read_account(ctx, account_id) is None:
            raise forbidden_query("users may list only transfers of their own accounts")
    page = await paged(
        ctx.view(TransfersView).list(
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
            status=status.value if status is not None else None,
            account_id=account_id,
        )
    )
    edges = [TransferEdge(cursor=e.cursor, node=Transfer.from_record(e.node)) for e in page.edges]
    return TransferConnection(edges=edges, page_info=page_info(page))


async def transfer(
    info: strawberry.Info[Context], id: strawberry.ID, consistency: Consistency | None = None
) -> Transfer | None:
    await ensure_consistency(info.context, consistency)
    return await read_transfer(info.context, str(id))


async def transfers(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    status: TransferStatus | None = None,
    account_id: strawberry.ID | None = None,
    consistency: Consistency | None = None,
    last: int | None = None,
    before: str | None = None,
) -> TransferConnection:
    window = Window.of(info.context, first, after, last, before)
    await ensure_consistency(info.context, consistency)
    account_filter = str(account_id) if account_id is not None else None
    return await transfers_page(info.context, window, status, account_filter)


@strawberry.type
class TransfersQuery:
    transfer: Transfer | None = strawberry.field(
        resolver=transfer, description="One transfer; null when unknown or not yours."
    )
    transfers: TransferConnection = strawberry.field(
        resolver=transfers,
        description="Transfers, newest first (cursor connection: `first`/`after` forwards, "
        "`last`/`before` backwards, one direction per request), by status and/or an account "
        "on either side.",
    )


# -- requestTransfer ------------------------------------------------------------------


async def _transfer_position(root: TransferPayload, info: strawberry.Info[Context]) -> int | None:
    return await current_position(
        info.context, str(root.transfer.id), root.version, root.known_position
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
        requested = Transfer(
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
            transfer=requested,
            version=outcome.version,
            duplicate=outcome.duplicate,
            known_position=last_position(outcome),
        )


TransferResult = Annotated[TransferPayload | e.ErrorType, strawberry.union("TransferResult")]


@flat_input
@strawberry.input
class RequestTransferInput:
    from_account_id: strawberry.ID
    to_account_id: strawberry.ID
    amount: DecimalString
    command_id: str | None = None


async def transfer_access(ctx: Context, from_id: str, to_id: str) -> e.ErrorType | None:
    """Both accounts must exist; a non-admin must own the source account.

    Checked up front so that an obviously doomed transfer is refused at once
    instead of failing later in the process manager.
    """
    refused = await account_access(ctx, from_id)
    if refused is not None:
        return refused
    for account_id in (from_id, to_id) if ctx.user.is_admin else (to_id,):
        missing = await require_account(ctx, account_id)
        if missing is not None:
            return missing
    return None


async def request_transfer(
    info: strawberry.Info[Context], input: RequestTransferInput
) -> TransferResult:
    ctx = info.context
    invalid = first_error(
        check_account_id(str(input.from_account_id), "fromAccountId"),
        check_account_id(str(input.to_account_id), "toAccountId"),
        check_command_id(input.command_id),
    )
    if invalid is not None:
        return invalid
    amount = amount_of(input.amount)
    if isinstance(amount, e.InvalidInput):
        return amount
    refused = await transfer_access(ctx, str(input.from_account_id), str(input.to_account_id))
    if refused is not None:
        return refused
    context = command_context(ctx, input.command_id)
    command = RequestTransfer(
        transfer_id=new_id_for("trf", context),
        from_account_id=str(input.from_account_id),
        to_account_id=str(input.to_account_id),
        amount=amount,
    )
    outcome = await send(ctx, command, context)
    if isinstance(outcome, CommandOutcome):
        return TransferPayload.from_outcome(outcome)
    return outcome


@strawberry.type
class TransfersMutation:
    request_transfer: TransferResult = strawberry.mutation(
        resolver=request_transfer,
        description="Move money between accounts. The transfer then runs asynchronously: "
        "follow it with `transfer(id)` or `transferChanged(id)`.",
    )


# -- live updates ---------------------------------------------------------------------


async def _transfer_accounts(ctx: Context, transfer_id: str) -> tuple[str, ...]:
    """The transfer's source and destination accounts; none when it does not exist.

    Read model first (they never change), else the transfer's events.
    """
    change = await live_of(ctx).current(topic_for("transfer", transfer_id))
    record = change.document
    if isinstance(record, TransferRecord):
        return (record.from_account_id, record.to_account_id)
    try:
        state: TransferState = (await ctx.service.load(TRANSFER, transfer_id)).state
    except StreamTypeMismatch:
        return ()
    return (state.from_account_id, state.to_account_id) if state.exists else ()


async def _may_watch_transfer(ctx: Context, transfer_id: str) -> bool:
    if ctx.user.is_admin:
        return True
    for account_id in await _transfer_accounts(ctx, transfer_id):
        owner = await owner_of(ctx, account_id)
        if owner is not None and ctx.user.owns(owner):
            return True
    return False


def transfer_changed(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[Transfer, None]:
    ctx = info.context

    async def admit() -> None:
        if not await _may_watch_transfer(ctx, str(id)):
            raise forbidden_query("you may only subscribe to transfers of your accounts")

    return documents(ctx, topic_for("transfer", str(id)), Transfer.from_record, admit=admit)


@strawberry.type
class TransfersSubscription:
    transfer_changed: AsyncGenerator[Transfer, None] = strawberry.subscription(
        resolver=transfer_changed, description="The transfer now, then after each change."
    )


FEATURE = Feature(
    name="transfers",
    domain=DOMAIN,
    read_side=READ_SIDE,
    query=TransfersQuery,
    mutation=TransfersMutation,
    subscription=TransfersSubscription,
    nodes={TRANSFER_PREFIX: read_transfer},
    stream_documents={TRANSFER_PREFIX: TRANSFERS_READ_MODEL},
)
