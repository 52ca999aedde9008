"""The accounts feature's GraphQL API: types, reads, time travel, mutations, live updates.

Users see and change only their own accounts (``User.owns``); admins see
everything. ``Account`` is built from the read model (``AccountsView``) or
from the state the Application Service rebuilds from events (time travel,
mutation payloads). Money is held as int minor units and served as
``Decimal`` strings.

Relay: ``Account`` implements strawberry's ``relay.Node``; connections of it use
strawberry's ``PageInfo``, ``Edge`` and ``Connection``. A node's ``id`` is the
account id itself (``acc-<32 hex>``), not strawberry's base64 ``GlobalID``:
the prefixes already make ids unique across types, and clients keep the ids
they stored and pass to every argument that takes one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import relay

from application.repository import StreamTypeMismatch
from application.service import CommandOutcome
from domain.accounts import (
    ACCOUNT,
    DOMAIN,
    AccountNotFound,
    AccountState,
    CloseAccount,
    Deposit,
    OpenAccount,
    Withdraw,
)
from domain.aggregate import DomainError
from domain.money import parse_currency
from domain.validation import check_owner
from projections.accounts import (
    NAME as ACCOUNTS_READ_MODEL,
)
from projections.accounts import (
    READ_SIDE,
    AccountRecord,
    AccountsView,
    StatementLine,
    StatementView,
)
from projections.live import topic_for
from schema import errors as e
from schema._engine.inputs import flat_input
from schema.app import Feature
from schema.audit_types import Event
from schema.commands import (
    POSITION,
    amount_of,
    check_command_id,
    check_expected_version,
    command_context,
    current_position,
    first_error,
    last_position,
    new_id_for,
    send,
)
from schema.context import Context
from schema.errors import ClientError, forbidden_query
from schema.reads import (
    NODE_ID,
    Consistency,
    PageInfo,
    Window,
    ensure_consistency,
    first_of,
    page_info,
    paged,
    plausible_id,
    recorded_at,
)
from schema.scalars import DecimalString, money
from schema.subscriptions import documents, live_of

ACCOUNT_PREFIX = "acc-"
ACCOUNT_ID = re.compile(r"acc-[0-9a-f]{32}", re.ASCII)

# -- types ----------------------------------------------------------------------------


@strawberry.enum
class AccountStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@strawberry.enum
class StatementKind(Enum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    REFUND = "refund"


@strawberry.type(description="One line of an account's statement: a balance change.")
class StatementEntry:
    version: int
    position: int | None
    kind: StatementKind
    amount: DecimalString = strawberry.field(description="Signed: negative when money left.")
    balance: DecimalString = strawberry.field(description="The balance after this entry.")
    transfer_id: strawberry.ID | None
    recorded_at: datetime

    @classmethod
    def from_record(cls, line: StatementLine) -> StatementEntry:
        return cls(
            version=line.version,
            position=line.position,
            kind=StatementKind(line.kind),
            amount=money(line.amount),
            balance=money(line.balance),
            transfer_id=strawberry.ID(line.transfer_id) if line.transfer_id else None,
            recorded_at=line.recorded_at,
        )


# Statement lines are no Relay nodes (``node(id:)`` cannot fetch one), and strawberry's
# generic ``Edge``/``Connection`` take nodes only: these two are written out.
@strawberry.type
class StatementEdge:
    cursor: str
    node: StatementEntry


@strawberry.type
class StatementConnection:
    edges: list[StatementEdge]
    page_info: PageInfo


async def _statement(
    root: Account,
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> StatementConnection:
    window = Window.of(info.context, first, after, last, before)
    return await statement_page(info.context, str(root.id), window)


@strawberry.type(description="A bank account: the read model, or its state rebuilt from events.")
class Account(relay.Node):
    id: strawberry.ID = strawberry.field(description=NODE_ID)
    owner: str
    currency: str
    balance: DecimalString
    status: AccountStatus
    version: int = strawberry.field(description="The account stream version this reflects.")
    position: int | None = strawberry.field(
        description="The global position this reflects; null for rebuilt or unsequenced states."
    )
    opened_at: datetime | None
    updated_at: datetime | None

    statement: StatementConnection = strawberry.field(
        resolver=_statement,
        description="Balance changes, oldest first (cursor connection: `first`/`after` "
        "forwards, `last`/`before` backwards). Always the current statement, also on a state "
        "rebuilt as of an earlier version.",
    )

    @classmethod
    def resolve_id(cls, root: Account, *, info: strawberry.Info) -> str:
        return str(root.id)

    @classmethod
    def from_record(cls, record: AccountRecord) -> Account:
        return cls(
            id=strawberry.ID(record.id),
            owner=record.owner,
            currency=record.currency,
            balance=money(record.balance),
            status=AccountStatus(record.status),
            version=record.version,
            position=record.position,
            opened_at=record.opened_at,
            updated_at=record.updated_at,
        )

    @classmethod
    def from_state(
        cls,
        state: AccountState,
        version: int,
        opened_at: datetime | None,
        updated_at: datetime | None,
    ) -> Account:
        """An account rebuilt by the Application Service."""
        return cls(
            id=strawberry.ID(state.account_id),
            owner=state.owner,
            currency=state.currency,
            balance=money(state.balance),
            status=AccountStatus(state.status),
            version=version,
            position=None,
            opened_at=opened_at,
            updated_at=updated_at,
        )


# strawberry names these generic types AccountConnection and AccountEdge.
AccountEdge = relay.Edge[Account]
AccountConnection = relay.Connection[Account]


@strawberry.type(description="An account's state right after one of its events.")
class AccountHistoryEntry:
    event: Event
    account: Account


# -- reads ----------------------------------------------------------------------------


async def read_account(ctx: Context, account_id: str) -> Account | None:
    """The account from the read model; None when unknown or not the caller's."""
    if not plausible_id(account_id):
        return None
    record = await ctx.view(AccountsView).get(account_id)
    if record is None or not ctx.user.owns(record.owner):
        return None
    return Account.from_record(record)


async def accounts_page(ctx: Context, window: Window, owner: str | None) -> AccountConnection:
    if not ctx.user.is_admin:
        if owner is not None and not ctx.user.owns(owner):
            raise forbidden_query("users may list only their own accounts")
        owner = ctx.user.name
    page = await paged(
        ctx.view(AccountsView).list(
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
            owner=owner,
        )
    )
    edges = [AccountEdge(cursor=e.cursor, node=Account.from_record(e.node)) for e in page.edges]
    return AccountConnection(edges=edges, page_info=page_info(page))


async def statement_page(ctx: Context, account_id: str, window: Window) -> StatementConnection:
    """The statement of an account the caller was allowed to see."""
    page = await paged(
        ctx.view(StatementView).list(
            account_id,
            first=window.first,
            after=window.after,
            last=window.last,
            before=window.before,
        )
    )
    edges = [
        StatementEdge(cursor=e.cursor, node=StatementEntry.from_record(e.node)) for e in page.edges
    ]
    return StatementConnection(edges=edges, page_info=page_info(page))


async def rebuilt_account(ctx: Context, account_id: str, version: int) -> Account:
    """The account's state at ``version``, rebuilt from its events.

    The caller has already been allowed to see the account.
    """
    loaded = await ctx.service.load(ACCOUNT, account_id, at_version=version)
    opened = await recorded_at(ctx, account_id, 1)
    updated = await recorded_at(ctx, account_id, loaded.version)
    return Account.from_state(loaded.state, loaded.version, opened, updated)


async def account_as_of(
    ctx: Context, account_id: str, at_version: int | None, as_of: datetime | None
) -> Account | None:
    """Time travel: the account as of a version or a moment; None if it did not exist."""
    if at_version is not None and as_of is not None:
        raise ClientError("give atVersion or asOf, not both")
    if at_version is not None and at_version < 1:
        raise ClientError("atVersion must be >= 1")
    if not plausible_id(account_id):
        return None
    if as_of is not None:
        loaded = await ctx.service.load(ACCOUNT, account_id, as_of=as_of)
    else:
        loaded = await ctx.service.load(ACCOUNT, account_id, at_version=at_version)
    state: AccountState = loaded.state
    if not state.exists or not ctx.user.owns(state.owner):
        return None
    opened = await recorded_at(ctx, account_id, 1)
    updated = await recorded_at(ctx, account_id, loaded.version)
    return Account.from_state(state, loaded.version, opened, updated)


async def account_history(
    ctx: Context, account_id: str, from_version: int, first: int | None
) -> list[AccountHistoryEntry]:
    """Events ``from_version`` on (at most ``first``), each with the state after it."""
    size = first_of(ctx, first)
    if from_version < 1:
        raise ClientError("fromVersion must be >= 1")
    if not plausible_id(account_id):
        return []
    entries = await ctx.service.history(ACCOUNT, account_id, to_version=from_version + size - 1)
    if not entries:
        return []
    if not ctx.user.owns(str(entries[-1].state.owner)):
        raise forbidden_query("the history of another user's account is only available to admins")
    opened = entries[0].event.recorded_at
    return [
        AccountHistoryEntry(
            event=Event.from_recorded(entry.event),
            account=Account.from_state(
                entry.state, entry.event.version, opened, entry.event.recorded_at
            ),
        )
        for entry in entries
        if entry.event.version >= from_version
    ]


async def account(
    info: strawberry.Info[Context],
    id: strawberry.ID,
    at_version: int | None = None,
    as_of: datetime | None = None,
    consistency: Consistency | None = None,
) -> Account | None:
    ctx = info.context
    if at_version is not None or as_of is not None:
        return await account_as_of(ctx, str(id), at_version, as_of)
    await ensure_consistency(ctx, consistency)
    return await read_account(ctx, str(id))


async def accounts(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    owner: str | None = None,
    consistency: Consistency | None = None,
    last: int | None = None,
    before: str | None = None,
) -> AccountConnection:
    window = Window.of(info.context, first, after, last, before)
    await ensure_consistency(info.context, consistency)
    return await accounts_page(info.context, window, owner)


async def account_history_field(
    info: strawberry.Info[Context],
    id: strawberry.ID,
    from_version: int = 1,
    first: int | None = None,
) -> list[AccountHistoryEntry]:
    return await account_history(info.context, str(id), from_version, first)


@strawberry.type
class AccountsQuery:
    account: Account | None = strawberry.field(
        resolver=account,
        description="One account: the read model, or rebuilt from its events as of "
        "`atVersion` or `asOf`. Null when it does not exist or is not yours.",
    )
    accounts: AccountConnection = strawberry.field(
        resolver=accounts,
        description="Accounts by id (cursor connection: `first`/`after` forwards, "
        "`last`/`before` backwards, one direction per request). Users see only their own.",
    )
    account_history: list[AccountHistoryEntry] = strawberry.field(
        resolver=account_history_field,
        description="Each event of one account with the account's state right after it.",
    )


# -- mutations ------------------------------------------------------------------------


def check_account_id(value: str, field: str = "accountId") -> e.InvalidInput | None:
    if ACCOUNT_ID.fullmatch(value) is None:
        return e.InvalidInput(message=f"{field} is not an account id (acc-<32 hex>)", field=field)
    return None


async def account_access(ctx: Context, account_id: str) -> e.ErrorType | None:
    """None when the caller may change ``account_id``; otherwise the typed refusal.

    Admins are not checked here (the command itself reports an unknown
    account); a user must own the account, which is read from the event
    stream (never a possibly lagging read model).
    """
    if ctx.user.is_admin:
        return None
    if not ctx.user.authenticated:
        return e.forbidden("sign in to change accounts")
    state: AccountState = (await ctx.service.load(ACCOUNT, account_id)).state
    if not state.exists:
        return e.error_from_domain(AccountNotFound(account_id))
    if not ctx.user.owns(state.owner):
        return e.forbidden(f"account {account_id} belongs to another user")
    return None


async def require_account(ctx: Context, account_id: str) -> e.ErrorType | None:
    """None when ``account_id`` exists (read from its events), else ``AccountNotFound``."""
    state: AccountState = (await ctx.service.load(ACCOUNT, account_id)).state
    return None if state.exists else e.error_from_domain(AccountNotFound(account_id))


def owner_access(ctx: Context, owner: str) -> e.Forbidden | None:
    if ctx.user.owns(owner.strip()):
        return None
    return e.forbidden("users may open accounts only for themselves")


async def _account_position(root: AccountPayload, info: strawberry.Info[Context]) -> int | None:
    return await current_position(
        info.context, str(root.account_id), root.version, root.known_position
    )


async def _account_after(root: AccountPayload, info: strawberry.Info[Context]) -> Account:
    return await rebuilt_account(info.context, str(root.account_id), root.version)


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
            known_position=last_position(outcome),
        )


AccountResult = Annotated[AccountPayload | e.ErrorType, strawberry.union("AccountResult")]


@flat_input
@strawberry.input
class OpenAccountInput:
    owner: str
    currency: str
    command_id: str | None = strawberry.field(
        default=None, description="Idempotency key: a repeat returns the first outcome."
    )


@flat_input
@strawberry.input
class AmountInput:
    account_id: strawberry.ID
    amount: DecimalString
    command_id: str | None = None
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with ConcurrencyConflict unless at this version."
    )


@flat_input
@strawberry.input
class CloseAccountInput:
    account_id: strawberry.ID
    command_id: str | None = None
    expected_version: int | None = None


def _account_payload(outcome: CommandOutcome | e.ErrorType) -> AccountResult:
    if isinstance(outcome, CommandOutcome):
        return AccountPayload.from_outcome(outcome)
    return outcome


async def _change_account(
    ctx: Context, data: AmountInput | CloseAccountInput, command: object
) -> AccountResult:
    """Checks common to commands on an existing account, then send."""
    invalid = first_error(
        check_account_id(str(data.account_id)),
        check_command_id(data.command_id),
        check_expected_version(data.expected_version),
    )
    if invalid is not None:
        return invalid
    refused = await account_access(ctx, str(data.account_id))
    if refused is not None:
        return refused
    context = command_context(ctx, data.command_id, data.expected_version)
    return _account_payload(await send(ctx, command, context))


async def _amount_command(
    ctx: Context, data: AmountInput, kind: type[Deposit] | type[Withdraw]
) -> AccountResult:
    amount = amount_of(data.amount)
    if isinstance(amount, e.InvalidInput):
        return amount
    return await _change_account(ctx, data, kind(account_id=str(data.account_id), amount=amount))


async def open_account(info: strawberry.Info[Context], input: OpenAccountInput) -> AccountResult:
    ctx = info.context
    invalid = check_command_id(input.command_id)
    if invalid is not None:
        return invalid
    try:
        owner, currency = check_owner(input.owner), parse_currency(input.currency)
    except DomainError as error:
        return e.error_from_domain(error)
    refused = owner_access(ctx, owner)
    if refused is not None:
        return refused
    context = command_context(ctx, input.command_id)
    command = OpenAccount(account_id=new_id_for("acc", context), owner=owner, currency=currency)
    return _account_payload(await send(ctx, command, context))


async def deposit(info: strawberry.Info[Context], input: AmountInput) -> AccountResult:
    return await _amount_command(info.context, input, Deposit)


async def withdraw(info: strawberry.Info[Context], input: AmountInput) -> AccountResult:
    return await _amount_command(info.context, input, Withdraw)


async def close_account(info: strawberry.Info[Context], input: CloseAccountInput) -> AccountResult:
    command = CloseAccount(account_id=str(input.account_id))
    return await _change_account(info.context, input, command)


@strawberry.type
class AccountsMutation:
    open_account: AccountResult = strawberry.mutation(
        resolver=open_account,
        description="Open an account for `owner` in `currency` (a 3-letter ISO code).",
    )
    deposit: AccountResult = strawberry.mutation(
        resolver=deposit, description="Put money into an account."
    )
    withdraw: AccountResult = strawberry.mutation(
        resolver=withdraw, description="Take money out of an account (never below zero)."
    )
    close_account: AccountResult = strawberry.mutation(
        resolver=close_account, description="Close an account; its balance must be zero."
    )


# -- live updates ---------------------------------------------------------------------


async def owner_of(ctx: Context, account_id: str) -> str | None:
    """The account's owner; None when the account does not exist.

    Read from the read model when it has the account (an owner never changes),
    else from the account's events: a just-opened account may not be projected yet.
    """
    change = await live_of(ctx).current(topic_for("account", account_id))
    record = change.document
    if isinstance(record, AccountRecord):
        return record.owner
    try:
        state: AccountState = (await ctx.service.load(ACCOUNT, account_id)).state
    except StreamTypeMismatch:  # the id names another kind of stream: no such account
        return None
    return state.owner if state.exists else None


async def may_watch_account(ctx: Context, account_id: str) -> bool:
    if ctx.user.is_admin:
        return True
    owner = await owner_of(ctx, account_id)
    return owner is not None and ctx.user.owns(owner)


def account_changed(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[Account, None]:
    ctx = info.context

    async def admit() -> None:
        if not await may_watch_account(ctx, str(id)):
            raise forbidden_query("you may only subscribe to your own accounts")

    return documents(ctx, topic_for("account", str(id)), Account.from_record, admit=admit)


@strawberry.type
class AccountsSubscription:
    account_changed: AsyncGenerator[Account, None] = strawberry.subscription(
        resolver=account_changed, description="The account now, then after each change."
    )


FEATURE = Feature(
    name="accounts",
    domain=DOMAIN,
    read_side=READ_SIDE,
    query=AccountsQuery,
    mutation=AccountsMutation,
    subscription=AccountsSubscription,
    nodes={ACCOUNT_PREFIX: read_account},
    stream_documents={ACCOUNT_PREFIX: ACCOUNTS_READ_MODEL},
)
