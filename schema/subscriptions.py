"""GraphQL subscriptions: the live audit log, and the helpers feature subscriptions use.

- ``events(after, streamId, types)`` (``CoreSubscription``): every event in
  global order with ``position > after`` (caught up from the store, then live;
  no gap and no duplicate at the seam). Admin only. A subscriber that falls too
  far behind is ended with an error whose ``extensions`` are
  ``{code: "SUBSCRIBER_TOO_SLOW", resumeAfter: <position>}``: subscribing again
  with ``after: resumeAfter`` misses nothing. Without ``after`` it starts at
  the current head (live only).
- ``documents(ctx, topic, convert)``: a feature's live read model
  (``accountChanged(id)``...): the current document first (when it exists),
  then the document after each change, each with the ``version``/``position``
  it reflects. A slow subscriber skips intermediate states and gets the latest.

Every stream comes from ``context.live`` (``projections.live.Live``), which
tails the global feed once per process; nothing here opens a database cursor
per subscriber. A read-model stream parks once set up
(``schema._engine.parking``, tuned engine, ``graphql-transport-ws``): an idle
subscriber then keeps no task. Generators are closed with ``aclosing``, and each hub
subscription is bound to the operation's task, so a client that disconnects
leaves no hub subscription behind even when the protocol handler drops the
generator without closing it. The number of subscriptions per connection is
bounded by strawberry's ``max_subscriptions_per_connection``, which
``schema.app`` sets from ``Limits``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import strawberry

from projections.hub import SubscriberOverflow
from projections.live import Live
from schema._engine import parking
from schema._engine.fanout import shared
from schema.audit_types import Event
from schema.context import Context
from schema.errors import ClientError, forbidden_query

MAX_EVENT_TYPES = 50
T = TypeVar("T")


def slow_subscriber(resume_after: int) -> ClientError:
    error = ClientError(
        f"subscriber fell too far behind; subscribe again with after: {resume_after}",
        "SUBSCRIBER_TOO_SLOW",
    )
    error.extensions["resumeAfter"] = resume_after
    return error


def live_of(ctx: Context) -> Live:
    """The process's live feed; an ``UNAVAILABLE`` error where this process serves none."""
    if ctx.live is None:
        raise ClientError("this server process serves no subscriptions", "UNAVAILABLE")
    return ctx.live


def documents(
    ctx: Context,
    topic: str,
    convert: Callable[[Any], T],
    *,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[T, None]:
    """Converted documents of ``topic``; an absent document is not sent.

    ``admit`` is the subscriber's authorization: awaited when the stream
    starts, in the subscription's task; what it raises (``forbidden_query``)
    ends the subscription with that error before anything is sent. A
    feature's subscription resolver is then a plain function that returns
    this generator::

        def account_changed(info, id) -> AsyncGenerator[Account, None]:
            async def admit() -> None:
                if not await may_watch_account(info.context, str(id)):
                    raise forbidden_query("you may only subscribe to your own accounts")

            return documents(info.context, topic_for("account", str(id)), Account.from_record,
                             admit=admit)

    An ``async def`` resolver with the check before it returns would answer a
    refusal differently (graphql-transport-ws ``error`` instead of ``next``
    with the error, then ``complete``), and one that iterates this generator
    itself keeps a second suspended generator per subscriber.

    Every subscriber of the topic gets the same converted object for a change
    (``schema._engine.fanout``), so its result is executed and encoded once per
    (query, variables, user), not once per subscriber. After each message the
    subscriber pauses in proportion to the topic's subscribers (``projections.hub.Pacer``);
    its latest-only queue meanwhile keeps the newest document.

    It is ``Live.documents``'s generator itself, not one around it: an idle
    subscriber keeps one suspended frame fewer. Call it from the subscription's
    own task (the hub subscription is bound to it: it ends with that task even
    if the server drops the generator without closing it). Over
    ``graphql-transport-ws`` with the tuned engine the stream is parked once
    its current document was sent (``schema._engine.parking``): an idle
    subscriber then keeps no task and no operation at all. When a parked
    subscriber's change must be executed by strawberry again (a result with
    errors), this returns just that change (``parking.replaying``) and
    ``admit`` is not awaited again.
    """
    if ctx.live is None:
        return _unavailable(ctx, admit)
    payload = parking.replaying()
    if payload is not parking.NO_PAYLOAD:
        return parking.once(payload)
    return ctx.live.documents(
        topic,
        functools.partial(shared, convert=convert),
        owner=asyncio.current_task(),
        admit=admit,
        park=parking.offer(),
    )


async def _unavailable(
    ctx: Context, admit: Callable[[], Awaitable[None]] | None
) -> AsyncGenerator[Any, None]:
    """The stream where this process serves none: ``admit``, then ``UNAVAILABLE``.

    Both raise when the stream is first iterated, as they would in the stream itself.
    """
    if admit is not None:
        await admit()
    yield live_of(ctx)  # never yields: live_of raises here


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
    events = live_of(ctx).events(
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


@strawberry.type
class CoreSubscription:
    events: AsyncGenerator[Event, None] = strawberry.subscription(
        resolver=events,
        description="Every event in global order after `after` (admin only): catch-up, then live.",
    )
