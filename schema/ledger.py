"""The ledger feature's GraphQL API: totals per currency, as a query and a live subscription.

Any signed-in user may read the ledger (it holds no account's details).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from projections.ledger import READ_SIDE, TOPIC, LedgerTotals, LedgerView
from schema.app import Feature
from schema.context import Context
from schema.errors import forbidden_query
from schema.reads import Consistency, ensure_consistency
from schema.scalars import DecimalString, money
from schema.subscriptions import documents


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


def _signed_in(ctx: Context) -> None:
    if not ctx.user.authenticated:
        raise forbidden_query("the ledger needs a signed-in user")


async def ledger(
    info: strawberry.Info[Context], consistency: Consistency | None = None
) -> list[Ledger]:
    ctx = info.context
    await ensure_consistency(ctx, consistency)
    _signed_in(ctx)
    return [Ledger.from_record(totals) for totals in await ctx.view(LedgerView).all()]


@strawberry.type
class LedgerQuery:
    ledger: list[Ledger] = strawberry.field(
        resolver=ledger, description="Totals per currency over all accounts."
    )


def _ledger(totals: list[LedgerTotals]) -> list[Ledger]:
    return [Ledger.from_record(currency) for currency in totals]


def ledger_changed(
    info: strawberry.Info[Context, None],
) -> AsyncGenerator[list[Ledger], None]:
    ctx = info.context

    async def admit() -> None:
        _signed_in(ctx)

    return documents(ctx, TOPIC, _ledger, admit=admit)


@strawberry.type
class LedgerSubscription:
    ledger_changed: AsyncGenerator[list[Ledger], None] = strawberry.subscription(
        resolver=ledger_changed,
        description="The ledger (totals per currency) now, then after each change.",
    )


FEATURE = Feature(
    name="ledger", read_side=READ_SIDE, query=LedgerQuery, subscription=LedgerSubscription
)
