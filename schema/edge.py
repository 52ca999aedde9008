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

This module holds what strawberry's public hooks allow (``parse_json``,
``decode_json``, ``process_result``, ``on_parse``) and the message checks;
the WebSocket handlers that apply them (``schema._engine.websockets``) and the
refusal of subscriptions over HTTP (``schema._engine.http``) override
non-public parts of strawberry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from schema.context import Context
from schema.errors import INTERNAL_SERVER_ERROR

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request's JSON (HTTP or WebSocket)."""
MAX_OPERATION_ID_LENGTH = 128
"""Longest operation ``id`` a WebSocket client may use."""

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

TRANSPORT_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})
LEGACY_TYPES = frozenset({"connection_init", "connection_terminate", "start", "stop"})
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


# -- the view ------------------------------------------------------------------------


class EdgeGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view with the HTTP edge rules of this module."""

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


__all__ = [
    "LEGACY_TYPES",
    "MAX_JSON_DEPTH",
    "TRANSPORT_TYPES",
    "BadJSON",
    "EdgeGraphQL",
    "SafeParserCache",
    "decode_json_text",
    "message_problem",
]
