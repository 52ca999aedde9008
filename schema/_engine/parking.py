"""Parked live subscriptions: an idle read-model subscriber keeps no task and no operation.

A ``graphql-transport-ws`` subscription to a live read model
(``schema.subscriptions.documents``: ``accountChanged(id)``...) would keep, for
as long as it lasts, a task, strawberry's operation (its generators and
extension hooks) and graphql-core's subscription executor, all suspended
while the subscriber waits, which it does nearly all of the time. With the
tuned engine it runs them only to set the subscription up:

1. ``TransportWSHandler.run_operation`` (``schema._engine.websockets``) opens a
   ``Slot`` for the operation's task and runs strawberry's operation as
   always: parsing, validation, limits and cost, the resolver with the
   subscriber's authorization, the current document sent as ``next``.
2. ``documents`` passes ``offer()`` to the live read model, which, once the
   current document was sent, offers its stream (with the pause still due
   after that document) as a ``projections.live.Follower``. The slot takes it when the operation's
   results can be shared (``SharingExecutor.sharing_key``), and the
   generator, strawberry's operation and the task then end without a
   ``complete``.
3. The handler replaces the operation (in ``operations``: the per-connection
   limit and duplicate ids count it as before) with a ``ParkedOperation``
   and starts the follower, whose deliveries run in a copy of the
   connection's context (what they log carries its request id). What stays
   per subscriber is that record, the follower and its hub subscription: a
   few hundred bytes.

Each change the follower delivers is sent by ``ParkedOperation.push``: the
result the subscription's sharing key already has for that payload
(``schema._engine.fanout``), or else one execution of the document with the
payload as its root value (a ``SharingExecutor`` built for it, whose result is
shared in turn), with the ``extensions`` of the operation's last result (the
cost, which depends only on the document and its variables). A result with
errors, or a push before any result gave the extensions, is not sent from
here: strawberry's whole operation runs again for that one payload
(``replaying``: the resolver's ``documents`` then yields just the payload and
checks nothing again), so errors are masked, coded and logged exactly as in
a running subscription.

What differs from a subscription that keeps its operation: the operation
metrics count a parked subscription when its set-up ends, and its seconds are
the set-up's; the resolver's ``admit`` runs once, at subscribe time, as
before. ``GRAPHQL_ENGINE=plain`` parks nothing, and the legacy ``graphql-ws``
protocol never parks.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from contextvars import ContextVar
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types import ExecutionResult as StrawberryResult
from strawberry.types.execution import PreExecutionError

from projections.live import Follower
from schema._engine.extensions import core_schema
from schema._engine.fanout import SharingExecutor, SharingKey, shared_result
from schema.context import Context

NO_PAYLOAD: Any = object()
"""What ``replaying()`` answers outside a replayed operation."""


class Slot:
    """What one operation's task offers to park (set up) or replays (one payload)."""

    __slots__ = ("document", "executor", "extensions", "follower", "key", "replay")

    def __init__(self, replay: object = NO_PAYLOAD) -> None:
        self.replay = replay
        self.document: DocumentNode | None = None
        self.executor: SharingExecutor | None = None
        self.extensions: dict[str, Any] | None = None
        self.follower: Follower | None = None
        self.key: SharingKey | None = None

    def take(self, follower: Follower) -> bool:
        """``Follower`` offered by the live read model: taken when the results can be shared."""
        executor, self.executor = self.executor, None
        key = executor.sharing_key() if executor is not None else None
        if executor is None or key is None or self.follower is not None:
            return False
        fragments = executor.fragment_definitions.values()
        self.document = DocumentNode(definitions=(executor.operation, *fragments))
        self.follower, self.key = follower, key
        return True

    def close(self) -> None:
        """Close a follower that was taken but not handed to a ``ParkedOperation``."""
        follower, self.follower = self.follower, None
        if follower is not None:
            follower.close()


_SLOT: ContextVar[Slot | None] = ContextVar("parking_slot", default=None)


def open_slot() -> Slot:
    """A set-up slot for the current task's operation (its task's own context)."""
    slot = Slot()
    _SLOT.set(slot)
    return slot


def offer() -> Callable[[Follower], bool] | None:
    """What ``documents`` passes as ``park``: the open set-up slot's ``take``, if any."""
    slot = _SLOT.get()
    return slot.take if slot is not None and slot.replay is NO_PAYLOAD else None


def replaying() -> object:
    """The payload this task's operation runs again for; ``NO_PAYLOAD`` otherwise."""
    slot = _SLOT.get()
    return NO_PAYLOAD if slot is None else slot.replay


async def stream_of(operation: Operation[Context, None]) -> Any:
    """strawberry's result stream of ``operation``, on its connection's context."""
    handler = operation.handler
    return await handler.schema.stream(
        operation.query,
        variable_values=operation.variables,
        context_value=handler.context,
        root_value=handler.root_value,
        operation_name=operation.operation_name,
    )


async def once(payload: object) -> AsyncGenerator[Any, None]:
    """The source of a replayed operation: the one payload."""
    yield payload


class ParkingExecutor(SharingExecutor):
    """``SharingExecutor`` that shows an open slot the subscription's executor.

    Only a subscription's executors call ``subscribed``: queries and mutations
    pay nothing for it.
    """

    def subscribed(self) -> None:
        slot = _SLOT.get()
        if slot is not None and slot.executor is None:
            slot.executor = self


class ParkedOperation(Operation[Context, None]):
    """A subscription that runs only when its follower has a document for it (see the module)."""

    __slots__ = ("document", "extensions", "follower", "key")

    def __init__(
        self,
        operation: Operation[Context, None],
        follower: Follower,
        key: SharingKey,
        document: DocumentNode,
        extensions: dict[str, Any] | None,
    ) -> None:
        text = key[1]  # the document's own text: one copy for all its subscribers
        query = text if text == operation.query else operation.query
        super().__init__(
            operation.handler, operation.id, query, operation.variables, operation.operation_name
        )
        self.follower = follower
        self.key = key
        self.document = document
        self.extensions = extensions

    def start(self, context: contextvars.Context) -> None:
        """Deliver changes; each push runs in ``context`` (the connection's, for its logs)."""
        self.follower.start(self.push, self.end, context=context)

    def close(self) -> None:
        self.follower.close()

    async def end(self) -> None:
        """The live feed ended (the process stops): ``complete``, as a running stream would."""
        if self.handler.operations.get(self.id) is self:
            await self.send_operation_message({"id": self.id, "type": "complete"})

    async def push(self, payload: object) -> None:
        """Send the result for one payload; an error ends the subscription, as it would the task."""
        try:
            result = await self._result(payload)
            if result is None:
                await self._replay(payload)
            else:
                await self.send_next(
                    StrawberryResult(data=result.data, errors=None, extensions=self.extensions)
                )
        except Exception as error:
            self.close()
            await self.handler.handle_task_exception(error)
            if self.handler.operations.get(self.id) is self:
                with suppress(Exception):  # the client may be gone
                    await self.send_operation_message({"id": self.id, "type": "complete"})
                self.handler.operations.pop(self.id, None)

    async def _result(self, payload: object) -> ExecutionResult | None:
        """The shared or newly executed result; None when strawberry must run it."""
        if self.extensions is None:
            return None
        hit = shared_result(payload, self.key)
        if hit is not None:
            return hit
        handler = self.handler
        executor = SharingExecutor.build(
            core_schema(handler.schema),  # type: ignore[arg-type]
            self.document,
            root_value=payload,
            context_value=handler.context,
            raw_variable_values=self.variables,
            operation_name=self.operation_name,
        )
        if not isinstance(executor, SharingExecutor):
            return None
        executor.share_as(payload, self.key)
        result = executor.execute_operation()
        if executor.is_awaitable(result):
            result = await result
        if not isinstance(result, ExecutionResult) or result.errors:
            return None
        return result

    async def _replay(self, payload: object) -> None:
        """strawberry's operation once more, with ``payload`` as its source's only item."""
        token = _SLOT.set(Slot(replay=payload))
        try:
            source = await stream_of(self)
            async with aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError) or not isinstance(
                        result, StrawberryResult
                    ):
                        errors = getattr(result, "errors", None) or [
                            GraphQLError("the subscription can no longer run")
                        ]
                        self.close()
                        await self.send_initial_errors(errors)
                        return
                    self.extensions = result.extensions
                    await self.send_next(result)
        finally:
            _SLOT.reset(token)
