"""GraphQL subscriptions: the live audit log and live read models.

- ``events(after, streamId, types)``: every event in global order with
  ``position > after`` (caught up from the store, then live; no gap and no
  duplicate at the seam). Admin only. A subscriber that falls too far behind
  is ended with an error whose ``extensions`` are
  ``{code: "SUBSCRIBER_TOO_SLOW", resumeAfter: <position>}``: subscribing again
  with ``after: resumeAfter`` misses nothing. Without ``after`` it starts at
  the current head (live only).
- ``accountChanged(id)``, ``transferChanged(id)``, ``ledgerChanged``: the
  current read model first (when it exists), then the read model after each
  change. Each carries the ``version``/``position`` it reflects. A slow
  subscriber skips intermediate states and gets the latest.

Every stream comes from ``context.live`` (``projections.live.Live``), which
tails the global feed once per process; nothing here opens a database cursor
per subscriber. Generators are closed with ``aclosing``, and each hub
subscription is bound to the operation's task, so a client that disconnects
leaves no hub subscription behind even when the protocol handler drops the
generator without closing it. In jwt mode users subscribe only to their own
accounts and to transfers from or to them; ownership is read from the read
model, or from the event store while the read model does not have the
account or transfer yet (right after ``openAccount``). The number of subscriptions per
connection is bounded by strawberry's ``max_subscriptions_per_connection``,
which ``schema.app`` sets from ``Limits``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import strawberry

from application.repository import StreamTypeMismatch
from domain.account import ACCOUNT
from domain.transfer import TRANSFER
from projections.live import Live
from projections.live_topics import LEDGER_TOPIC, live_topic, topic_for
from projections.records import AccountRecord, LedgerTotals, TransferRecord
from projections.subscription import SubscriberOverflow
from schema.context import Context
from schema.errors import ClientError, forbidden_query
from schema.fanout import shared
from schema.pacing import PACER
from schema.types import Account, Event, Ledger, Transfer

MAX_EVENT_TYPES = 50
T = TypeVar("T")


def slow_subscriber(resume_after: int) -> ClientError:
    error = ClientError(
        f"subscriber fell too far behind; subscribe again with after: {resume_after}",
        "SUBSCRIBER_TOO_SLOW",
    )
    error.extensions["resumeAfter"] = resume_after
    return error


def _live(ctx: Context) -> Live:
    if ctx.live is None:
        raise ClientError("this server process serves no subscriptions", "UNAVAILABLE")
    return ctx.live


async def _documents(
    ctx: Context, topic: str, convert: Callable[[Any], T]
) -> AsyncGenerator[T, None]:
    """Converted documents of ``topic``; an absent document is not sent.

    Every subscriber of the topic gets the same converted object for a change
    (``schema.fanout``), so its result is executed and encoded once per
    (query, variables, user), not once per subscriber. After each message the
    subscriber pauses in proportion to the topic's subscribers (``schema.pacing``);
    its latest-only queue meanwhile keeps the newest document.
    """
    live = _live(ctx)
    # Bound to the operation's task: the hub subscription ends with it even if
    # the server drops this generator without closing it.
    changes = live.changes(topic, owner=asyncio.current_task())
    async with aclosing(changes):
        async for change in changes:
            if change.document is not None:
                yield shared(change.document, convert)
                await PACER.pace(live.hub, live_topic(topic))


async def _owner_of(ctx: Context, account_id: str) -> str | None:
    """The account's owner; None when the account does not exist.

    Read from the read model when it has the account (an owner never changes),
    else from the account's events: a just-opened account may not be projected yet.
    """
    change = await _live(ctx).current(topic_for("account", account_id))
    record = change.document
    if isinstance(record, AccountRecord):
        return record.owner
    try:
        state = (await ctx.service.load(ACCOUNT, account_id)).state
    except StreamTypeMismatch:  # the id names another kind of stream: no such account
        return None
    return str(state.owner) if state.exists else None


async def _transfer_accounts(ctx: Context, transfer_id: str) -> tuple[str, ...]:
    """The transfer's source and destination accounts; none when it does not exist.

    Read model first (they never change), else the transfer's events.
    """
    change = await _live(ctx).current(topic_for("transfer", transfer_id))
    record = change.document
    if isinstance(record, TransferRecord):
        return (record.from_account_id, record.to_account_id)
    try:
        state = (await ctx.service.load(TRANSFER, transfer_id)).state
    except StreamTypeMismatch:
        return ()
    return (str(state.from_account_id), str(state.to_account_id)) if state.exists else ()


async def _may_watch_account(ctx: Context, account_id: str) -> bool:
    if ctx.user.is_admin:
        return True
    owner = await _owner_of(ctx, account_id)
    return owner is not None and ctx.user.owns(owner)


async def _may_watch_transfer(ctx: Context, transfer_id: str) -> bool:
    if ctx.user.is_admin:
        return True
    for account_id in await _transfer_accounts(ctx, transfer_id):
        owner = await _owner_of(ctx, account_id)
        if owner is not None and ctx.user.owns(owner):
            return True
    return False


def _ledger(totals: list[LedgerTotals]) -> list[Ledger]:
    return [Ledger.from_record(currency) for currency in totals]


async def _event_stream(
    ctx: Context, after: int | None, stream_id: str | None, types: list[str] | None
) -> AsyncGenerator[Event, None]:
    if not ctx.user.is_admin:
        raise forbidden_query("the event stream is only available to admins")
    if after is not None and after < 0:
        raise ClientError("after must be >= 0")
    if types is not None and len(types) > MAX_EVENT_TYPES:
        raise ClientError(f"at most {MAX_EVENT_TYPES} event types")
    start = after if after is not None else await ctx.events.head_position()
    events = _live(ctx).events(
        start, stream_id=stream_id, types=types, owner=asyncio.current_task()
    )
    async with aclosing(events):
        try:
            async for event in events:
                yield Event.from_recorded(event)
        except SubscriberOverflow as overflow:  # names the last position yielded
            resume_after = overflow.resume_after
            raise slow_subscriber(start if resume_after is None else resume_after) from overflow


async def events(
    info: strawberry.Info[Context, None],
    after: int | None = None,
    stream_id: strawberry.ID | None = None,
    types: list[str] | None = None,
) -> AsyncGenerator[Event, None]:
    ctx = info.context
    stream = _event_stream(ctx, after, str(stream_id) if stream_id else None, types)
    async with aclosing(stream):
        async for event in stream:
            yield event


async def account_changed(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[Account, None]:
    ctx = info.context
    if not await _may_watch_account(ctx, str(id)):
        raise forbidden_query("you may only subscribe to your own accounts")
    stream = _documents(ctx, topic_for("account", str(id)), Account.from_record)
    async with aclosing(stream):
        async for account in stream:
            yield account


async def transfer_changed(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[Transfer, None]:
    ctx = info.context
    if not await _may_watch_transfer(ctx, str(id)):
        raise forbidden_query("you may only subscribe to transfers of your accounts")
    stream = _documents(ctx, topic_for("transfer", str(id)), Transfer.from_record)
    async with aclosing(stream):
        async for transfer in stream:
            yield transfer


async def ledger_changed(
    info: strawberry.Info[Context, None],
) -> AsyncGenerator[list[Ledger], None]:
    ctx = info.context
    if not ctx.user.authenticated:
        raise forbidden_query("the ledger needs a signed-in user")
    stream = _documents(ctx, LEDGER_TOPIC, _ledger)
    async with aclosing(stream):
        async for ledger in stream:
            yield ledger


@strawberry.type
class Subscription:
    events: AsyncGenerator[Event, None] = strawberry.subscription(
        resolver=events,
        description="Every event in global order after `after` (admin only): catch-up, then live.",
    )
    account_changed: AsyncGenerator[Account, None] = strawberry.subscription(
        resolver=account_changed, description="The account now, then after each change."
    )
    transfer_changed: AsyncGenerator[Transfer, None] = strawberry.subscription(
        resolver=transfer_changed, description="The transfer now, then after each change."
    )
    ledger_changed: AsyncGenerator[list[Ledger], None] = strawberry.subscription(
        resolver=ledger_changed,
        description="The ledger (totals per currency) now, then after each change.",
    )
