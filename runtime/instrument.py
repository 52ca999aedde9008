"""Measuring the other packages from the outside, without editing them.

- ``InstrumentedEventStore``: an ``EventStore`` proxy timing appends and
  counting concurrency conflicts.
- ``InstrumentedService``: an Application Service proxy counting commands by
  type and outcome and binding command / correlation ids into the log context.
- ``OperationMetrics``: a strawberry schema extension counting GraphQL
  operations by type, name and outcome, with latency; the name label takes
  values from a bounded set only (``runtime.metrics.operation_label``).

The ASGI middleware (request ids, body limit, WebSocket counts) is in
``runtime/middleware.py``.

While tracing is on (``runtime.tracing``) both proxies also make spans: the
command (``command <Type>``), the event reads that load its stream (``load``)
and the append (``append``), whose ``traceparent`` is the one stored in the
commit metadata. While it is off they only copy the request's well-formed
``traceparent`` into the command's context.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from strawberry.extensions import SchemaExtension

from application.context import CommandContext
from domain.aggregate import DomainError
from runtime import tracing
from runtime.forwarding import NO_METADATA, ForwardingEventStore
from runtime.logging import bind
from runtime.metrics import Children, Metrics, operation_label
from store.protocol import (
    AppendResult,
    CommitMetadata,
    ConcurrencyError,
    DuplicateCommandError,
    EventStore,
    NewEvent,
    RecordedEvent,
)

log = logging.getLogger(__name__)

# What an append may answer without anything being wrong: a rival won the version
# (retried), or a copy of the command recorded its outcome first.
_APPEND_OUTCOMES = (ConcurrencyError, DuplicateCommandError)

# Conflicts met by the command running in this task (None outside a command).
_conflicts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "conflicts", default=None
)


class InstrumentedEventStore(ForwardingEventStore):
    """Delegates everything to ``inner``; measures ``append``."""

    def __init__(self, inner: EventStore, metrics: Metrics) -> None:
        super().__init__(inner)
        self._metrics = metrics
        self._append_seconds = Children(metrics.append_seconds)

    async def append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata = NO_METADATA,
    ) -> AppendResult:
        if not tracing.enabled():
            return await self._append(stream_id, stream_type, expected_version, events, metadata)
        attributes: dict[str, str | int] = {
            "ledger.stream_type": stream_type,
            "ledger.events": len(events),
        }
        with tracing.span("append", attributes=attributes, expected=_APPEND_OUTCOMES):
            # Consumers in any process continue the trace from this span.
            metadata = dataclasses.replace(metadata, traceparent=tracing.current_traceparent())
            return await self._append(stream_id, stream_type, expected_version, events, metadata)

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        if not tracing.enabled():
            return await self.inner.read_stream(stream_id, from_version, to_version)
        with tracing.span("load", attributes={"ledger.from_version": from_version}):
            return await self.inner.read_stream(stream_id, from_version, to_version)

    async def _append(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: CommitMetadata,
    ) -> AppendResult:
        started = time.perf_counter()
        try:
            return await self.inner.append(
                stream_id, stream_type, expected_version, events, metadata
            )
        except ConcurrencyError:
            self._metrics.append_conflicts.labels(stream_type).inc()
            counter = _conflicts.get()
            if counter is not None:
                counter[0] += 1
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._append_seconds(stream_type).observe(elapsed)

    def __getattr__(self, name: str) -> Any:
        # Backend extras (e.g. a sequencer hook) stay reachable through the proxy.
        return getattr(self.inner, name)


class InstrumentedService:
    """Wraps an Application Service: ``handle`` is measured, the rest delegated."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._commands = Children(metrics.commands)

    async def handle(self, command: object, context: Any = None) -> Any:
        if not tracing.enabled():
            return await self._handle(command, _with_traceparent(context))
        traceparent = getattr(context, "traceparent", None)
        name = f"command {type(command).__name__}"
        with tracing.span(name, traceparent=traceparent, expected=(DomainError,)):
            return await self._handle(command, _with_traceparent(context))

    async def _handle(self, command: object, context: Any) -> Any:
        kind = type(command).__name__
        counter = [0]
        token = _conflicts.set(counter)
        command_id = getattr(context, "command_id", None)
        correlation_id = getattr(context, "correlation_id", None)
        outcome = "error"
        started = time.perf_counter()
        with bind(command_id=command_id, correlation_id=correlation_id):
            try:
                result = await self._call(command, context)
                outcome = "duplicate" if getattr(result, "duplicate", False) else "ok"
                return result
            except DomainError as error:
                outcome = "conflict" if error.code == "concurrency_conflict" else "rejected"
                raise
            finally:
                _conflicts.reset(token)
                self._count(kind, outcome, counter[0])
                elapsed_ms = (time.perf_counter() - started) * 1000
                log.debug("command %s %s in %.1f ms", kind, outcome, elapsed_ms)

    def _count(self, kind: str, outcome: str, conflicts: int) -> None:
        self._commands(kind, outcome).inc()
        # Each conflict is followed by another attempt, except the last when it gave up.
        retries = conflicts if outcome != "conflict" else max(conflicts - 1, 0)
        if retries:
            self._metrics.command_retries.labels(kind).inc(retries)

    async def _call(self, command: object, context: Any) -> Any:
        if context is None:
            return await self.inner.handle(command)
        return await self.inner.handle(command, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _with_traceparent(context: Any) -> Any:
    """``context`` carrying the current trace (tracing on) or the request's ``traceparent``.

    A context that carries one already keeps it (a process manager's command
    continues its event's trace); other kinds of context are left alone.
    """
    if context is not None and not isinstance(context, CommandContext):
        return context
    if context is not None and context.traceparent is not None and not tracing.enabled():
        return context
    traceparent = tracing.current_traceparent()
    if traceparent is None:
        return context
    if context is None:
        return CommandContext(traceparent=traceparent)
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
