"""The GraphQL endpoint's edge: what a hostile HTTP or WebSocket client can send.

Everything a client sends is refused with a clear client error before it can
cost the server a traceback, an unbounded wait or unbounded state:

- HTTP JSON bodies, and the ``variables``/``extensions`` query parameters of a
  GET, are decoded by ``decode_json_text``: invalid UTF-8, a lone surrogate
  escape, a number too long to convert, nesting deeper than
  ``MAX_JSON_DEPTH`` and a top level that is not an object (or a list, which
  strawberry refuses as a batch) get 400 with the reason.
- A subscription over HTTP gets 400 ("subscriptions need a WebSocket").
- Both WebSocket protocols check every message's shape first
  (``message_problem``) and close the socket with 4400 and the reason; both
  allow one ``connection_init`` per socket (a second closes with 4429) and
  close a socket that sends none in time with 4408.
- A syntax error (also a document over the token limit) or a validation
  error of an operation over a WebSocket is answered with the protocol's
  ``error`` message, and the socket stays open.
- Legacy ``graphql-ws`` runs queries and mutations too (one ``data``, then
  ``complete``), as ``graphql-transport-ws`` does.
- A client that vanished while a subscription was sending to it is logged at
  debug; anything else that ends an operation task is a server error.

strawberry offers public hooks for most of this (``parse_json``,
``decode_json``, ``execute_single``, ``on_parse`` and the handler classes).
Where it has none, the smallest override is used, and only here:

- ``BaseGraphQLTransportWSHandler._get_pre_execution_close_reason`` (a static
  method) always answers None, so pre-execution errors are sent as ``error``
  messages instead of closing the socket;
- ``BaseGraphQLWSHandler.handle_async_results`` is re-implemented to run
  ``schema.stream`` (any operation type) instead of ``schema.subscribe``;
- the handlers' ``handle``, ``handle_message`` and
  ``handle_connection_init`` are wrapped (the init timeout, message checks and
  the single init), and ``connection_acknowledged``, ``tasks`` and
  ``subscriptions`` are read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected as SendAfterClose
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import ParserCache
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from uvicorn.protocols.utils import ClientDisconnected

from schema.context import Context
from schema.errors import INTERNAL_SERVER_ERROR

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request's JSON (HTTP or WebSocket)."""
MAX_OPERATION_ID_LENGTH = 128
"""Longest operation ``id`` a WebSocket client may use."""
SUBSCRIPTION_OVER_HTTP = (
    "subscriptions need a WebSocket: connect to this URL with the "
    "graphql-transport-ws (or legacy graphql-ws) subprotocol"
)

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_CONTAINERS = (dict, list)


class BadJSON(ValueError):
    """A client's JSON that the service refuses; the message says why."""


# -- JSON ----------------------------------------------------------------------------


def decode_json_text(data: str | bytes) -> object:
    """``json.loads`` that raises ``BadJSON`` with the reason for anything it refuses.

    Python's decoder raises ``RecursionError`` on very deep nesting,
    ``UnicodeDecodeError`` on invalid UTF-8 and a plain ``ValueError`` for an
    integer of more than 4,300 digits; each becomes a ``BadJSON``. Nesting
    deeper than ``MAX_JSON_DEPTH`` and strings holding a lone surrogate (which
    no UTF-8 encoder can write back) are refused too.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise BadJSON("the request is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise BadJSON(f"invalid JSON: {error.msg} at position {error.pos}") from None
    except ValueError as error:  # e.g. an integer too long to convert
        raise BadJSON(f"invalid JSON: {str(error)[:80]}") from None
    # A document with fewer brackets than the limit cannot be nested deeper.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(value):
        raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(value):
        raise BadJSON("JSON string holds an unpaired surrogate escape")
    return value


def _too_deep(value: object) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, _CONTAINERS))  # type: ignore[attr-defined]
    return False


def _strings(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _encodable(value: object) -> bool:
    try:
        for text in _strings(value):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Undecodable:
    """A WebSocket message that is not acceptable JSON, with the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


# -- WebSocket messages --------------------------------------------------------------

_TRANSPORT_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})
_LEGACY_TYPES = frozenset({"connection_init", "connection_terminate", "start", "stop"})
_STARTS = frozenset({"subscribe", "start"})
_WITH_ID = frozenset({"subscribe", "start", "complete", "stop"})


def message_problem(message: object, known_types: frozenset[str]) -> str | None:
    """Why ``message`` is not a valid message of the protocol (None when it is)."""
    if isinstance(message, _Undecodable):
        return message.reason
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in known_types:
        return f"unknown message type: {str(kind)[:40]!r}"
    if kind in _WITH_ID:
        op_id = message.get("id")
        if not isinstance(op_id, str) or not 0 < len(op_id) <= MAX_OPERATION_ID_LENGTH:
            return f"'{kind}' needs an 'id': a string of 1 to {MAX_OPERATION_ID_LENGTH} characters"
    payload = message.get("payload")
    if kind in _STARTS:
        return _operation_problem(kind, payload)
    if kind == "connection_init" and payload is not None and not isinstance(payload, dict):
        return "the connection_init payload must be an object"
    return None


def _operation_problem(kind: str, payload: object) -> str | None:
    if not isinstance(payload, dict):
        return f"the '{kind}' payload must be an object"
    if not isinstance(payload.get("query"), str):
        return f"the '{kind}' payload needs a 'query' string"
    for name, types in (("variables", dict), ("extensions", dict), ("operationName", str)):
        value = payload.get(name)
        if value is not None and not isinstance(value, types):
            return f"the '{kind}' payload's '{name}' must be {_KIND_NAMES[types]} or null"
    return None


_KIND_NAMES: dict[type, str] = {dict: "an object", str: "a string"}


# -- parsing -------------------------------------------------------------------------


class SafeParserCache(ParserCache):
    """``ParserCache`` that leaves a document it cannot parse to strawberry.

    strawberry catches a syntax error only when it parses the document itself;
    one raised by an ``on_parse`` hook escapes ``Schema.stream`` (a WebSocket
    operation task dies and the client gets a bare ``complete``) and skips the
    extensions on HTTP. Leaving ``graphql_document`` unset makes strawberry
    parse again (with the same parse options, so the token limit holds) and
    report the error as the operation's result. A missing query is left to
    strawberry too (HTTP 400).
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:
            with suppress(GraphQLError):
                context.graphql_document = self.cached_parse_document(
                    context.query, **context.parse_options
                )
        yield


# -- WebSocket handlers --------------------------------------------------------------

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


class EdgeTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws`` with message checks and ``error`` for pre-execution errors."""

    async def handle_message(self, message: Message) -> None:
        problem = message_problem(message, _TRANSPORT_TYPES)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        return None  # a client's bad document is answered, the socket stays open

    async def handle_task_exception(self, error: Exception) -> None:
        _log_task_failure(error)


class EdgeLegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """``graphql-ws`` (subscriptions-transport-ws) under the same rules as the newer protocol.

    strawberry's legacy handler has no init timeout, acknowledges every
    ``connection_init`` (a second one could switch the socket's user), lets a
    malformed message end the handler with an exception, runs subscriptions
    only, and never retrieves a failed operation task's exception (asyncio
    then reports "Task exception was never retrieved" when it is collected).
    """

    _init_received = False

    async def handle(self) -> None:
        timeout = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            timeout.cancel()
            with suppress(asyncio.CancelledError):
                await timeout

    async def _close_without_init(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self._init_received:
            with suppress(*_CLIENT_GONE, RuntimeError):
                await self.websocket.close(4408, "Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage) -> None:
        problem = message_problem(message, _LEGACY_TYPES)
        if problem is not None:
            await self.websocket.close(4400, problem[:120])
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self._init_received = True
        await super().handle_connection_init(message)

    async def handle_start(self, message: StartMessage) -> None:
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


# -- the view ------------------------------------------------------------------------


class EdgeGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view with the HTTP edge rules of this module.

    The WebSocket rules are in ``EdgeTransportWSHandler`` and
    ``EdgeLegacyWSHandler``, which the service's handler classes derive from.
    """

    def parse_json(self, data: str | bytes) -> Any:
        """HTTP JSON (a POST body, GET ``variables``/``extensions``): an object or 400."""
        try:
            value = decode_json_text(data)
        except BadJSON as error:
            raise HTTPException(400, f"Unable to parse request body as JSON: {error}") from None
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The GraphQL request must be a JSON object")
        return value

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message; undecodable text becomes a marker the handlers refuse (4400)."""
        try:
            return decode_json_text(data)
        except BadJSON as error:
            return _Undecodable(str(error))

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Every error carries ``extensions.code``; one that escaped the masking extension
        (raised around it) is a server fault."""
        response = await super().process_result(request, result)
        errors: list[dict[str, Any]] = response.get("errors") or []  # type: ignore[assignment]
        for error in errors:
            extensions = error.setdefault("extensions", {})
            extensions.setdefault("code", INTERNAL_SERVER_ERROR)
        return response

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's ``execute_single``, but a subscription is refused with 400."""
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if not self.allow_queries_via_get and method == "GET":
            allowed -= {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTION_OVER_HTTP) from error
            raise HTTPException(400, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error


__all__ = [
    "MAX_JSON_DEPTH",
    "BadJSON",
    "EdgeGraphQL",
    "EdgeLegacyWSHandler",
    "EdgeTransportWSHandler",
    "SafeParserCache",
    "decode_json_text",
    "message_problem",
]
