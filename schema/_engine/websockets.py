"""The two WebSocket protocol handlers: the edge rules and sessions that expire.

strawberry has no public hooks inside its protocol handlers, so these rules
are overrides of its handler classes (``strawberry.subscriptions.protocols``)
and stay on with either engine (UPGRADING.md):

- every message's shape is checked first (``schema.edge.message_problem``);
  a bad one closes the socket with 4400 and the reason;
- ``graphql-transport-ws`` answers a pre-execution error (syntax, validation)
  with an ``error`` message and keeps the socket open: its static
  ``_get_pre_execution_close_reason`` always answers None;
- legacy ``graphql-ws`` gets the newer protocol's rules: one
  ``connection_init`` per socket (a second closes with 4429), a socket that
  sends none in time is closed with 4408, queries and mutations run too
  (``handle_async_results`` runs ``schema.stream`` instead of
  ``schema.subscribe``), and a failed operation task's exception is retrieved;
- a client that vanished while a subscription was sending to it is logged at
  debug; anything else that ends an operation task is a server error;
- a connection authenticated with an expiring token ends when the token does
  (``schema.sessions``): 4401, and the legacy protocol sends
  ``connection_error`` first; a ``subscribe``/``start`` after expiry gets the
  same answer instead of a new operation.

An idle connection keeps no timer task once initialised: the
``graphql-transport-ws`` handler drops strawberry's cancelled init-timeout
task (``connection_init_timeout_task``, which strawberry would keep until the
connection ends) and the legacy handler cancels its own when
``connection_init`` arrives. Nor does it keep the last message it handled:
``WebSocketAdapter.iter_json`` (the view's ``websocket_adapter_class``) and
the ``graphql-transport-ws`` handler's ``handle`` are strawberry's loops
without the local variables that would hold it while waiting for the next.

With the tuned engine, ``graphql-transport-ws`` read-model subscriptions park
once set up (``schema._engine.parking``).

The handlers read ``connection_acknowledged``, ``connection_timed_out``,
``tasks`` and ``subscriptions``, clear ``connection_init_timeout_task``,
re-implement the ``graphql-transport-ws`` ``handle`` (calling
``on_request_accepted``) and ``run_operation`` (parking), and wrap
``cleanup_operation``, ``handle`` (legacy), ``handle_message``,
``handle_connection_init``, ``handle_subscribe``/``handle_start``,
``shutdown``/``cleanup`` and ``handle_task_exception``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from json import JSONDecodeError
from typing import Any, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from starlette.websockets import WebSocketDisconnected as SendAfterClose
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    OperationMessage,
    StartMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from uvicorn.protocols.utils import ClientDisconnected

from schema._engine.parking import ParkedOperation, ParkingExecutor, Slot, open_slot, stream_of
from schema.auth import session_expired
from schema.context import Context
from schema.edge import LEGACY_TYPES, TRANSPORT_TYPES, message_problem
from schema.sessions import EXPIRED_CODE, EXPIRED_REASON, SessionTimer

log = logging.getLogger(__name__)

# strawberry's, Starlette's (receive, and a send after the close) and uvicorn's
# ways of saying that the client is gone.
_CLIENT_GONE = (WebSocketDisconnected, WebSocketDisconnect, SendAfterClose, ClientDisconnected)


def _log_task_failure(error: BaseException) -> None:
    """Debug for a send to a client that is gone; error (with traceback) for anything else."""
    if isinstance(error, _CLIENT_GONE):
        log.debug("subscription ended: the WebSocket client is gone")
    else:
        log.error("subscription task failed", exc_info=error)


def _retrieve_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        _log_task_failure(error)


class WebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's ASGI WebSocket adapter, whose message loop keeps no message while it waits.

    strawberry's ``iter_json`` holds the text of the last message in a local
    variable while it waits for the next one; on an idle connection that is
    the ``subscribe`` message, for as long as the subscription lasts. This
    one decodes and yields each message without naming it; what it raises is
    unchanged.
    """

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        ws = self.ws
        try:
            while ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    yield self.view.decode_json(await ws.receive_text())
                except JSONDecodeError as error:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from error
        except KeyError as error:
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws`` under the rules of the module.

    With the tuned engine (a schema whose executor is ``ParkingExecutor``) its
    read-model subscriptions park once set up (``schema._engine.parking``):
    ``run_operation`` is strawberry's, except that an operation whose stream
    was taken over is not completed but replaced by a ``ParkedOperation``,
    which ``cleanup_operation`` closes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_timer = SessionTimer()

    @property
    def parking(self) -> bool:
        """Whether subscriptions park: the schema's executor is a ``ParkingExecutor``."""
        executor = getattr(self.schema, "execution_context_class", None)
        return isinstance(executor, type) and issubclass(executor, ParkingExecutor)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        if not self.parking:
            await super().run_operation(operation)
            return
        context = contextvars.copy_context()  # the connection's, without the slot
        slot = open_slot()
        try:
            result_source = await stream_of(operation)
            async with aclosing(_noting_extensions(result_source, slot)) as results:
                await self._send_result_stream(operation, results)
            if self._park(operation, slot, context):
                return
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            slot.close()

    def _park(
        self, operation: Operation[Context, None], slot: Slot, context: contextvars.Context
    ) -> bool:
        """Replace ``operation`` by a parked one if its stream was taken over."""
        follower, key, document = slot.follower, slot.key, slot.document
        if follower is None or key is None or document is None:
            return False
        if operation.completed or self.operations.get(operation.id) is not operation:
            return False
        parked = ParkedOperation(operation, follower, key, document, slot.extensions)
        slot.follower = None
        self.operations[operation.id] = parked
        parked.start(context)
        return True

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        if isinstance(operation, ParkedOperation):
            del self.operations[operation_id]
            operation.close()
            return
        await super().cleanup_operation(operation_id)

    async def handle(self) -> None:
        """strawberry's ``handle``, except that the loop drops each message once handled.

        Its loop variable would otherwise keep the last message (on an idle
        connection, the ``subscribe`` with its query) until the next one.
        """
        self.on_request_accepted()
        try:
            try:
                async for message in self.websocket.iter_json():
                    await self.handle_message(cast(Message, message))
                    del message
            except NonTextMessageReceived:
                await self.handle_invalid_message("WebSocket message type must be text")
            except NonJsonMessageReceived:
                await self.handle_invalid_message("WebSocket message must be valid JSON")
        except WebSocketDisconnected:
            pass
        finally:
            await self.shutdown()

    async def handle_message(self, message: Message) -> None:
        problem = message_problem(message, TRANSPORT_TYPES)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        return None  # a client's bad document is answered, the socket stays open

    async def handle_task_exception(self, error: Exception) -> None:
        _log_task_failure(error)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        was_acknowledged = self.connection_acknowledged
        await super().handle_connection_init(message)
        if not self.connection_timed_out:
            # strawberry has cancelled the init timeout and would keep the task
            # (and its CancelledError) until the connection ends; it has nothing
            # left to do, so ``shutdown`` need not wait for it.
            self.connection_init_timeout_task = None
        if self.connection_acknowledged and not was_acknowledged:
            self.session_timer.arm(self.context.auth, self.context.user, self.end_session)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and session_expired(self.context.auth, self.context.user):
            await self.end_session()
            return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        self.session_timer.disarm()
        await super().shutdown()

    async def end_session(self) -> None:
        await self.websocket.close(code=EXPIRED_CODE, reason=EXPIRED_REASON)


async def _noting_extensions(
    source: AsyncGenerator[Any, None], slot: Slot
) -> AsyncGenerator[Any, None]:
    """``source``'s results, the ``extensions`` of each noted in ``slot``."""
    async with aclosing(source):
        async for result in source:
            if isinstance(result, ExecutionResult):
                slot.extensions = result.extensions
            yield result


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """``graphql-ws`` (subscriptions-transport-ws) under the rules of the module.

    strawberry's legacy handler has no init timeout, acknowledges every
    ``connection_init`` (a second one could switch the socket's user), lets a
    malformed message end the handler with an exception, runs subscriptions
    only, and never retrieves a failed operation task's exception (asyncio
    then reports "Task exception was never retrieved" when it is collected).
    """

    _init_received = False
    _init_timeout: asyncio.Task[None] | None = None
    _init_timeout_fired = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_timer = SessionTimer()

    async def handle(self) -> None:
        self._init_timeout = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            timeout, self._init_timeout = self._init_timeout, None
            if timeout is not None:
                timeout.cancel()
                with suppress(asyncio.CancelledError):
                    await timeout

    async def _close_without_init(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        self._init_timeout_fired = True
        if not self._init_received:
            with suppress(*_CLIENT_GONE, RuntimeError):
                await self.websocket.close(4408, "Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage) -> None:
        problem = message_problem(message, LEGACY_TYPES)
        if problem is not None:
            await self.websocket.close(4400, problem[:120])
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self._init_received = True
        if self._init_timeout is not None and not self._init_timeout_fired:
            # Still asleep: cancelled, it ends at the next turn of the loop and
            # the connection keeps no task for the rest of its life.
            self._init_timeout.cancel()
            self._init_timeout = None
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.session_timer.arm(self.context.auth, self.context.user, self.end_session)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and session_expired(self.context.auth, self.context.user):
            await self.end_session()
            return
        await super().handle_start(message)
        task = self.tasks.get(message["id"])
        if task is not None:
            task.add_done_callback(_retrieve_exception)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """strawberry's loop over ``schema.stream``: queries and mutations run too."""
        try:
            result_source = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = result_source
            first = True
            async for result in result_source:
                if first and isinstance(result, PreExecutionError) and result.errors:
                    error = result.errors[0].formatted
                    await self.send_message({"type": "error", "id": operation_id, "payload": error})
                    return
                if isinstance(result, ExecutionResult):
                    await self.send_data_message(result, operation_id)
                first = False
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)

    async def cleanup(self) -> None:
        self.session_timer.disarm()
        await super().cleanup()

    async def end_session(self) -> None:
        with suppress(Exception):  # the close below still runs if the client is gone
            await self.send_message(
                {"type": "connection_error", "payload": {"message": EXPIRED_REASON}}
            )
        await self.websocket.close(code=EXPIRED_CODE, reason=EXPIRED_REASON)
