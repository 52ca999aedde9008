"""GraphQL object types and their construction from read models and events.

Read-model records (``projections.records``, returned by the views in
``projections.readmodels``) hold money as int minor units; the ``from_record``
constructors turn it into ``Decimal`` strings. Fields that need more data
(``Account.statement``) are resolved in ``schema.views``.

Relay: accounts and transfers implement strawberry's ``relay.Node`` and
connections of them use its ``PageInfo``, ``Edge`` and ``Connection``. A node's ``id``
is its own id (``acc-<32 hex>``, ``trf-<32 hex>``), not strawberry's base64
``GlobalID``: the prefixes already make ids unique across types, and clients
keep the ids they stored and pass to every argument that takes one.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from domain.money import format_amount
from projections.records import AccountRecord, LedgerTotals, StatementLine, TransferRecord
from schema.audit_types import Event, EventMetadata, ProjectionStatus
from schema.scalars import DecimalString


@strawberry.enum
class AccountStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


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


@strawberry.enum
class StatementKind(Enum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    REFUND = "refund"


def money(minor: int) -> DecimalString:
    return DecimalString(format_amount(minor))


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


@strawberry.type(description="Totals per currency over all accounts.")
class Ledger:
    currency: str
    open_accounts: int
    total_balance: DecimalString
    total_deposited: DecimalString
    total_withdrawn: DecimalString
    position: int | None = strawberry.field(description="The last global position reflected.")

    @classmethod
    def from_record(cls, totals: LedgerTotals) -> Ledger:
        return cls(
            currency=totals.currency,
            open_accounts=totals.open_accounts,
            total_balance=money(totals.total_balance),
            total_deposited=money(totals.total_deposited),
            total_withdrawn=money(totals.total_withdrawn),
            position=totals.position,
        )


NODE_ID = "Globally unique: the same id every argument takes; `node(id:)` finds it."


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


PageInfo = relay.PageInfo


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
    info: strawberry.Info,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> StatementConnection:
    from schema.views import Window, statement_page  # views import these types: resolve late

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
        cls, state: Any, version: int, opened_at: datetime | None, updated_at: datetime | None
    ) -> Account:
        """An account rebuilt by the Application Service (``domain.account.AccountState``)."""
        return cls(
            id=strawberry.ID(str(state.account_id)),
            owner=str(state.owner),
            currency=str(state.currency),
            balance=money(int(state.balance)),
            status=AccountStatus(state.status),
            version=version,
            position=None,
            opened_at=opened_at,
            updated_at=updated_at,
        )


__all__ = [
    "Account",
    "AccountStatus",
    "Event",
    "EventMetadata",
    "Ledger",
    "PageInfo",
    "ProjectionStatus",
    "StatementConnection",
    "StatementEdge",
    "StatementEntry",
    "StatementKind",
    "Transfer",
    "TransferStatus",
]
