"""Limits that keep one request from costing the server too much.

``Limits`` mirrors the runtime settings of the same names (``MAX_QUERY_DEPTH``,
``MAX_ALIASES``...); ``runtime/settings.py`` copies them over. ``limit_extensions`` turns
them into strawberry schema extensions. Before any resolver runs, a document
is refused while parsing (token count) or, in this order, by the checks here
and then by validation:

1. depth and aliases (``document_problems``), each fragment looked at once;
2. query cost (``schema.cost``), over ``MAX_QUERY_COST`` is ``QUERY_TOO_COSTLY``;
3. graphql-core's validation rules, plus the introspection switch. Its
   overlapping-fields rule is quadratic in the fields sharing a response name;
   its work budget is lowered to ``OVERLAP_BUDGET`` so that it stays bounded.

Steps 1 and 2 are linear in the document's size whatever its fragments do,
so a document is refused before any super-linear work. Execution is bounded
in time (``RequestLimits.on_execute``) and the response in size
(``bounded_response``). Every response carries ``extensions.cost``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import pymongo
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
)
from pymongo.errors import ConnectionFailure, PyMongoError
from strawberry.extensions import SchemaExtension

from schema._engine.extensions import core_schema
from schema.cost import CEILING, CostPlan, Pages, fragments_in_order
from schema.errors import UNAVAILABLE

log = logging.getLogger(__name__)

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
TIMEOUT = "TIMEOUT"

OVERLAP_BUDGET = 20_000
"""Work units of graphql-core's overlapping-fields rule per validation (its default:
500,000, about 0.6 s of CPU on a 2,000-token document repeating one field). Real
queries use a few hundred; over the budget the document is refused."""


Engine = Literal["tuned", "plain"]
ENGINE_VARIABLE = "GRAPHQL_ENGINE"


def engine_from_environment() -> Engine:
    """``GRAPHQL_ENGINE`` (default ``tuned``): the engine of a ``Limits`` built without settings.

    The service passes its ``Settings.graphql_engine`` explicitly; this default
    lets every schema built from a bare ``Limits()`` (tests, the SDL export)
    follow the same switch.
    """
    value = os.environ.get(ENGINE_VARIABLE, "tuned").strip().lower() or "tuned"
    if value == "tuned":
        return "tuned"
    if value == "plain":
        return "plain"
    raise ValueError(f"{ENGINE_VARIABLE} must be 'tuned' or 'plain', not {value!r}")


@dataclass(frozen=True)
class Limits:
    """Per-request and per-connection bounds; defaults suit development.

    ``max_body_bytes`` is enforced in front of this app by the runtime's ASGI
    middleware (413); it is kept here so the whole set travels together.
    ``graphql_engine`` picks the GraphQL engine (``schema._engine``): ``tuned`` or
    ``plain`` (strawberry's own behaviour); it travels with the limits because
    every schema and view is built from them.
    """

    max_query_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_page_size: int = 100
    default_page_size: int = 20
    max_subscriptions_per_connection: int = 20
    connection_init_timeout_seconds: float = 5.0
    max_body_bytes: int = 1_000_000
    consistency_timeout_seconds: float = 5.0
    introspection: bool = True
    graphiql: bool = True
    max_query_cost: int = 10_000
    max_response_bytes: int = 1_000_000
    request_timeout_seconds: float = 8.0
    graphql_engine: Engine = field(default_factory=engine_from_environment)


class PageSizeError(ValueError):
    """``first`` is outside 1..max_page_size."""


def page_size(limits: Limits, first: int | None) -> int:
    """The page size to use for ``first``; raise ``PageSizeError`` when out of range."""
    if first is None:
        return min(limits.default_page_size, limits.max_page_size)
    if first < 1 or first > limits.max_page_size:
        raise PageSizeError(f"first must be between 1 and {limits.max_page_size}, got {first}")
    return first


def pages_of(limits: Limits) -> Pages:
    return Pages(limits.default_page_size, limits.max_page_size)


# -- depth and aliases: linear, each fragment looked at once --------------------------


class _Shape:
    """Depth (as strawberry's ``QueryDepthLimiter`` counts it) and alias count."""

    __slots__ = ("aliases", "depth")

    def __init__(self, depth: int = 0, aliases: int = 0) -> None:
        self.depth = depth
        self.aliases = aliases

    def add(self, other: _Shape, depth_offset: int = 0) -> None:
        self.depth = max(self.depth, other.depth + depth_offset)
        self.aliases = min(self.aliases + other.aliases, CEILING)


def _shape(selection_set: SelectionSetNode, fragments: Mapping[str, _Shape]) -> _Shape:
    shape = _Shape()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                shape.aliases += 1
            if selection.selection_set is not None:
                inner = _shape(selection.selection_set, fragments)
                # Introspection fields do not count towards depth (as in strawberry).
                introspection = selection.name.value.startswith("__")
                shape.add(inner if not introspection else _Shape(0, inner.aliases), 1)
        elif isinstance(selection, FragmentSpreadNode):
            shape.add(fragments.get(selection.name.value, _NOTHING))
        elif isinstance(selection, InlineFragmentNode):
            shape.add(_shape(selection.selection_set, fragments))
    return shape


_NOTHING = _Shape()


def _operation_label(operation: OperationDefinitionNode) -> str:
    return operation.name.value if operation.name else "anonymous"


def document_problems(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """Depth and alias errors, spreads counted in full, in time linear in the document."""
    fragments: dict[str, _Shape] = {}
    for fragment in fragments_in_order(document):
        fragments[fragment.name.value] = _shape(fragment.selection_set, fragments)
    problems: list[GraphQLError] = []
    aliases = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        shape = _shape(definition.selection_set, fragments)
        aliases = min(aliases + shape.aliases, CEILING)
        if shape.depth > limits.max_query_depth:
            label = _operation_label(definition)
            problems.append(
                GraphQLError(
                    f"'{label}' exceeds maximum operation depth of {limits.max_query_depth}",
                    definition,
                )
            )
    if aliases > limits.max_aliases:
        problems.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    return problems


def cost_error(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"Query cost {cost} exceeds the limit of {limit}: ask for smaller pages, "
        "fewer nested lists or fewer aliases.",
        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "limit": limit},
    )


def validation_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """Validation rules added to graphql-core's: the introspection switch.

    Built once per schema: the rule classes must stay the same objects across
    requests, or the validation cache (keyed by the rules) would never hit.
    """
    return () if limits.introspection else (NoSchemaIntrospectionCustomRule,)


class DocumentChecks:
    """Per schema: each document's depth/alias problems and cost plan, by document object.

    The parser cache hands out one document object per query text, so on the
    hot path this is one dict lookup. Bounded: the oldest entry goes first.
    An entry keeps its document alive, so an id is never reused while cached.
    """

    def __init__(self, limits: Limits, maxsize: int = 1024) -> None:
        self.limits = limits
        self.pages = pages_of(limits)
        self.maxsize = maxsize
        self.entries: dict[int, tuple[DocumentNode, list[GraphQLError], CostPlan]] = {}

    def of(
        self, document: DocumentNode, schema: GraphQLSchema
    ) -> tuple[list[GraphQLError], CostPlan]:
        entry = self.entries.get(id(document))
        if entry is None or entry[0] is not document:
            problems = document_problems(document, self.limits)
            entry = (document, problems, CostPlan(document, schema, self.pages))
            if len(self.entries) >= self.maxsize:
                del self.entries[next(iter(self.entries))]
            self.entries[id(document)] = entry
        return entry[1], entry[2]


class Watchdog:
    """Cancels the tasks of requests still running past their deadline.

    One timer per process while requests are watched, not one per request:
    watching is a dict entry. Deadlines are met within ``resolution`` seconds.
    A task is only ever cancelled while watched, i.e. inside the block that
    watches it (the timer runs while every task is suspended).

    The timer lives on one event loop. A watch from another loop (a process
    runs one; a test suite runs many, one after another) starts afresh on it:
    a timer left armed on a loop that ended would never fire, and every later
    deadline would go unenforced.
    """

    def __init__(self, resolution: float = 0.1) -> None:
        self.resolution = resolution
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, task: asyncio.Task[Any], seconds: float) -> None:
        loop = task.get_loop()
        if loop is not self._loop:
            self._loop, self.timer = loop, None
            self.deadlines.clear()
            self.expired.clear()
        self.deadlines[task] = loop.time() + seconds
        if self.timer is None or self.timer.cancelled():
            self.timer = loop.call_later(self.resolution, self._check, loop)

    def unwatch(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching ``task``; True when it was cancelled for its deadline."""
        self.deadlines.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        for task, deadline in list(self.deadlines.items()):
            if deadline <= now and not task.done():
                del self.deadlines[task]
                self.expired.add(task)
                task.cancel("request deadline")
        if self.deadlines:
            self.timer = loop.call_later(self.resolution, self._check, loop)


WATCHDOG = Watchdog()


def _database_unavailable(error: BaseException | None) -> bool:
    """A database error that means "no answer" (timeout, lost connection), not a bug."""
    return isinstance(error, ConnectionFailure) or (
        isinstance(error, PyMongoError) and error.timeout
    )


def _unavailable(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if not _database_unavailable(original):
        return error
    log.warning("database unavailable at %s: %r", error.path or "operation", original)
    return GraphQLError(
        "The database did not answer in time; try again later.",
        error.nodes,
        path=error.path,
        extensions={"code": UNAVAILABLE},
    )


class RequestLimits(SchemaExtension):
    """Every limit of one operation, in one extension (one hook per stage).

    - Parsing gets the token limit (strawberry's ``MaxTokensLimiter`` option).
    - ``on_validate`` runs before the validation cache
      (``schema.app.CheckedValidationCache``): depth, aliases, then cost; a
      failed check sets ``pre_execution_errors`` and the validation that would
      follow is skipped.
    - ``on_execute`` bounds a query or mutation in time (see below).
    - ``get_results`` puts ``{"cost": {"requested", "limit"}}`` in the
      response's ``extensions`` (0 requested when the document did not parse;
      a document refused for its depth or aliases is still priced).

    Time: every database operation of the request runs under ``pymongo.timeout``
    (a client-side deadline PyMongo applies to server selection, connection
    checkout and each reply), so a stuck or vanished database raises in time;
    such errors answer ``UNAVAILABLE`` (logged once here, not masked as
    unexpected). Anything else still running at the deadline, plus a grace for
    the database error to arrive first, is cancelled (``Watchdog``) and
    answers ``TIMEOUT``. A mutation cut off this way may or may not have been
    applied: a retry with the same ``commandId`` gets its outcome exactly once.
    Subscriptions are long-lived by design and not bounded here (their set-up
    only builds a generator): a deadline set while they start would be
    inherited by every task they spawn.
    """

    GRACE_SECONDS = 0.5

    def __init__(
        self, limits: Limits, rules: tuple[type[ASTValidationRule], ...], checks: DocumentChecks
    ) -> None:
        self.limits = limits
        self.rules = rules
        self.checks = checks
        self.cost = 0

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        if self.rules:
            context.validation_rules = context.validation_rules + self.rules
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            problems, plan = self.checks.of(document, core_schema(context.schema))
            self.cost = plan.cost(context.operation_name, context.variables)
            if not problems and self.cost > self.limits.max_query_cost:
                problems = [cost_error(self.cost, self.limits.max_query_cost)]
            if problems:
                context.pre_execution_errors = list(problems)
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type.value == "subscription":
            yield
            return
        seconds = self.limits.request_timeout_seconds
        task = asyncio.current_task()
        if task is not None:
            WATCHDOG.watch(task, seconds + self.GRACE_SECONDS)
        try:
            with pymongo.timeout(seconds):
                yield
        except asyncio.CancelledError:
            if task is None or not WATCHDOG.unwatch(task):
                raise
            task.uncancel()
            log.warning(
                "%s %s cut off after %.1f s",
                context.operation_type.value,
                context.operation_name or "anonymous",
                seconds,
            )
            raise GraphQLError(
                f"The request did not finish within {seconds:g} s.",
                extensions={"code": TIMEOUT},
            ) from None
        finally:
            if task is not None and WATCHDOG.unwatch(task):
                task.uncancel()  # the deadline's cancellation was swallowed inside the block
        errors = getattr(context.result, "errors", None)
        if errors:
            errors[:] = [_unavailable(error) for error in errors]

    def get_results(self) -> dict[str, Any]:
        return {"cost": {"requested": self.cost, "limit": self.limits.max_query_cost}}


# -- size ----------------------------------------------------------------------------


def bounded_response(encoded: str | bytes, data: object, max_bytes: int) -> str | bytes:
    """``encoded`` (the JSON of response ``data``), or an error response when too large.

    The client gets a whole, valid response saying ``RESPONSE_TOO_LARGE`` with
    the size and the limit (and the response's own ``extensions``), never a
    truncated body. A mutation's effect stands: only its answer is dropped.
    """
    size = len(encoded)
    if size <= max_bytes or not isinstance(data, dict):
        return encoded
    error = {
        "message": f"The response of {size} bytes exceeds the limit of {max_bytes} bytes: "
        "ask for smaller pages or fewer fields.",
        "extensions": {"code": RESPONSE_TOO_LARGE, "size": size, "limit": max_bytes},
    }
    if "type" in data and isinstance(data.get("payload"), dict):  # a WebSocket message
        return json.dumps({**data, "payload": _too_large(data["payload"], error)})
    return json.dumps(_too_large(data, error))


def _too_large(response: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    replacement: dict[str, Any] = {"data": None, "errors": [error]}
    if isinstance(response.get("extensions"), dict):
        replacement["extensions"] = response["extensions"]
    return replacement


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Factories of the strawberry extensions enforcing ``limits`` on every operation."""
    return [partial(RequestLimits, limits, validation_rules(limits), DocumentChecks(limits))]
