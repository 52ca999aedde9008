"""Measuring the other packages from the outside: observers and a schema extension.

- ``Instruments``: the observer the Application Service (``CommandObserver``)
  and the event store (``StoreObserver``) are built with. It counts commands by
  type and outcome, and their retries; times appends and counts the version
  races they lose; binds command / correlation ids into the log context.
- ``OperationMetrics``: a strawberry schema extension counting GraphQL
  operations by type, name and outcome, with latency; the name label takes
  values from a bounded set only (``runtime.metrics.operation_label``).

The ASGI middleware (request ids, body limit, WebSocket counts) is in
``runtime/middleware.py``.

While tracing is on (``runtime.tracing``) the observer also makes spans: the
command (``command <Type>``), the event reads that load its stream (``load``),
the append (``append``), whose ``traceparent`` is the one stored in the commit
metadata, and each sequencer pass that stamped commits. While it is off it only
copies the request's well-formed ``traceparent`` into the command's context.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from strawberry.extensions import SchemaExtension

from application.service import CommandContext, CommandResult
from domain.aggregate import DomainError
from runtime import tracing
from runtime.logging import bind
from runtime.metrics import Children, Metrics, operation_label
from store.protocol import CommitMetadata, ConcurrencyError, DuplicateCommandError

log = logging.getLogger(__name__)

# What an append may answer without anything being wrong: a rival won the version
# (retried), or a copy of the command recorded its outcome first.
_APPEND_OUTCOMES = (ConcurrencyError, DuplicateCommandError)


class Instruments:
    """Metrics, log context and spans for commands and the event store's work.

    Implements ``application.service.CommandObserver`` and
    ``store.protocol.StoreObserver``; pass one instance to both.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._commands = Children(metrics.commands)
        self._append_seconds = Children(metrics.append_seconds)

    # -- commands -------------------------------------------------------------------

    @contextmanager
    def command(self, command: object, context: CommandContext) -> Iterator[CommandContext]:
        if not tracing.enabled():
            with _bound(context):
                yield _with_traceparent(context)
            return
        name = f"command {type(command).__name__}"
        span = tracing.span(name, traceparent=context.traceparent, expected=(DomainError,))
        with span, _bound(context):
            yield _with_traceparent(context)

    def on_command(
        self, type_name: str, result: CommandResult, seconds: float, conflicts: int
    ) -> None:
        self._commands(type_name, result).inc()
        # Each conflict is followed by another attempt, except the last when it gave up.
        retries = conflicts if result != "conflict" else max(conflicts - 1, 0)
        if retries:
            self._metrics.command_retries.labels(type_name).inc(retries)
        log.debug("command %s %s in %.1f ms", type_name, result, seconds * 1000)

    # -- the event store ------------------------------------------------------------

    @contextmanager
    def append(
        self, stream_type: str, events: int, metadata: CommitMetadata
    ) -> Iterator[CommitMetadata]:
        if not tracing.enabled():
            with self._timed(stream_type):
                yield metadata
            return
        attributes: dict[str, str | int] = {
            "ledger.stream_type": stream_type,
            "ledger.events": events,
        }
        with tracing.span("append", attributes=attributes, expected=_APPEND_OUTCOMES):
            # Consumers in any process continue the trace from this span.
            metadata = dataclasses.replace(metadata, traceparent=tracing.current_traceparent())
            with self._timed(stream_type):
                yield metadata

    @contextmanager
    def _timed(self, stream_type: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except ConcurrencyError:
            self._metrics.append_conflicts.labels(stream_type).inc()
            raise
        finally:
            self._append_seconds(stream_type).observe(time.perf_counter() - started)

    def read_stream(self, stream_id: str, from_version: int) -> AbstractContextManager[None]:
        if not tracing.enabled():
            return nullcontext()
        return _span("load", {"ledger.from_version": from_version})

    def sequenced(self, started_ns: int, commits: int) -> None:
        tracing.stamp_span(started_ns, commits)


@contextmanager
def _span(name: str, attributes: dict[str, str | int]) -> Iterator[None]:
    with tracing.span(name, attributes=attributes):
        yield


def _bound(context: CommandContext) -> AbstractContextManager[None]:
    """The command's ids in the log context of everything logged while it runs."""
    return bind(command_id=context.command_id, correlation_id=context.correlation_id)


def _with_traceparent(context: CommandContext) -> CommandContext:
    """``context`` carrying the current trace (tracing on) or the request's ``traceparent``.

    A context that carries one already keeps it while tracing is off (a process
    manager's command continues its event's trace).
    """
    if context.traceparent is not None and not tracing.enabled():
        return context
    traceparent = tracing.current_traceparent()
    if traceparent is None:
        return context
    return dataclasses.replace(context, traceparent=traceparent)


def operation_metrics(metrics: Metrics, names: Iterable[str] = ()) -> type[SchemaExtension]:
    """A strawberry extension class bound to ``metrics`` (pass it in ``extensions``).

    ``names``: the operation names labelled as such (``operation_label``).
    """
    operations, seconds = Children(metrics.graphql_operations), Children(metrics.graphql_seconds)
    known = frozenset(names)

    class OperationMetrics(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            started = time.perf_counter()
            yield
            context = self.execution_context
            kind = _operation_type(context)
            name = operation_label(context, known)
            result = getattr(context, "result", None)
            failed = result is None or bool(getattr(result, "errors", None))
            outcome = "error" if failed else "ok"
            operations(kind, name, outcome).inc()
            seconds(kind, name).observe(time.perf_counter() - started)

    return OperationMetrics


def _operation_type(context: Any) -> str:
    try:
        return str(context.operation_type.value)
    except Exception:  # an unparsable document has no operation type
        return "unknown"
