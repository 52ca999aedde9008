"""Tracing with OpenTelemetry: an optional extra (``pip install .[otel]``), off by default.

When it is on:

- **Configuration** is OpenTelemetry's own: the SDK reads the standard ``OTEL_*``
  variables (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, headers, timeout,
  ...). Tracing is on when the SDK is installed and the environment names an
  exporter: ``OTEL_TRACES_EXPORTER`` (``otlp``, over HTTP/protobuf, or
  ``console``; ``none`` is off) or an OTLP endpoint
  (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
  ``OTEL_SDK_DISABLED=true`` keeps it off. ``configure(exporter=...)`` is the
  test hook: spans go to the exporter given (the SDK's in-memory one).
- **Spans**: the HTTP request (``runtime.middleware``, continuing the client's
  W3C ``traceparent``), the GraphQL query or mutation (``operation_spans``),
  the command (``runtime.instrument``: ``command <Type>`` around the event read
  ``load``, ``decide`` and ``append``), each sequencer pass that stamped
  something (``stamp_span``; a pass stamps commits of many requests, so
  it is a trace of its own), each consumer's handling of a batch
  (``traced_handlers``: one ``consume <name>`` span per trace in the batch,
  a child of the traceparent stored with the events) and each read-model push
  to subscribers (``watch_pushes``: ``push live:<topic>``, a child of the
  traceparent of the event the pushed document reflects).
- **Across processes** the trace travels in the event store: the append stores
  the append span's ``traceparent`` in the commit metadata, and consumers and
  pushes in any process read it back with the event and start their spans as
  its children. The process manager's commands carry the triggering event's
  traceparent in their ``CommandContext``.

When it is off (the package is missing, which is detected once at import, or
nothing is configured) no wrapper is installed and every hook costs one check
of a module global. The request's ``traceparent`` header, when well formed, is
still stored with the commits it causes (``EventMetadata.traceId``), so a trace
id reaches the audit log without the SDK. Propagation is the SDK's W3C
propagator; nothing here parses or writes a traceparent by hand except the
format check of ``application.service.valid_traceparent``.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension

from application.service import valid_traceparent
from store.protocol import RecordedEvent

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    AVAILABLE = True
except ImportError:  # the ``otel`` extra is not installed: tracing stays off
    AVAILABLE = False

if TYPE_CHECKING:
    from starlette.types import Scope

    from application.repository import AnyDecider
    from projections.consumer import EventHandler
    from projections.hub import Hub
    from projections.live import Feed

log = logging.getLogger(__name__)

TRACER_NAME = "ledger"
MAX_SPANS_PER_BATCH = 64
"""Consumer spans per batch at most (one per distinct trace); the rest are counted."""
PUSH_MEMORY = 4096
"""Feed positions whose traceparent is remembered for the pushes that follow them."""

MAX_PATH = 200
"""Characters of the request path kept in a span attribute."""
# The methods a request span names; any other is "_OTHER" (OpenTelemetry's convention).
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_propagator: TraceContextTextMapPropagator | None = None

# The request's well-formed ``traceparent`` header while tracing is off (stored as is).
_request_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_traceparent", default=None
)


# -- set-up ----------------------------------------------------------------------------


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for traces (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(
    environ: Mapping[str, str] | None = None, *, exporter: SpanExporter | None = None
) -> bool:
    """Turn tracing on if the SDK is here and wanted (or ``exporter`` is given); say if on.

    Once on, it stays on with its first exporter until ``shutdown``: a test that
    configured an in-memory exporter keeps it through the app's start-up.
    """
    global _tracer, _provider, _propagator
    if _tracer is not None:
        return True
    if not AVAILABLE:
        return False
    environ = os.environ if environ is None else environ
    if exporter is None and not wanted(environ):
        return False
    provider = TracerProvider(resource=Resource.create())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter_from(environ)))
    _provider, _propagator = provider, TraceContextTextMapPropagator()
    _tracer = provider.get_tracer(TRACER_NAME)
    log.info("tracing on (OpenTelemetry)")
    return True


def _exporter_from(environ: Mapping[str, str]) -> SpanExporter:
    names = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if names.split(",")[0].strip() == "console":
        return ConsoleSpanExporter()
    # The OTLP exporter reads its endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def shutdown() -> None:
    """Export what is buffered and turn tracing off."""
    global _tracer, _provider, _propagator
    provider = _provider
    _tracer = _provider = _propagator = None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


# -- context ---------------------------------------------------------------------------


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (tracing on) or of the request (off)."""
    if _propagator is None:
        return _request_traceparent.get()
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _parent(traceparent: str | None) -> otel_context.Context | None:
    """The context whose span is ``traceparent`` (None: a new trace)."""
    if traceparent is None or _propagator is None:
        return None
    return _propagator.extract({"traceparent": traceparent}, context=otel_context.Context())


@contextmanager
def span(
    name: str,
    *,
    traceparent: str | None = None,
    attributes: Mapping[str, str | int] | None = None,
    expected: tuple[type[Exception], ...] = (),
) -> Iterator[Span | None]:
    """A current span named ``name`` (None while tracing is off).

    Its parent is the current span; without one, ``traceparent`` (a stored trace
    context) when given; else it starts a trace. An exception of an ``expected``
    type (a domain rejection, a version conflict that is retried) is named in
    the ``ledger.outcome`` attribute; any other marks the span as failed.
    """
    tracer = _tracer
    if tracer is None:
        yield None
        return
    parent = None
    if traceparent is not None and not trace.get_current_span().get_span_context().is_valid:
        parent = _parent(traceparent)
    with tracer.start_as_current_span(
        name,
        context=parent,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except expected as error:
            current.set_attribute("ledger.outcome", type(error).__name__)
            raise
        except Exception as error:
            _failed(current, error)
            raise


def _failed(span_: Span, error: Exception) -> None:
    span_.record_exception(error)
    span_.set_status(Status(StatusCode.ERROR, type(error).__name__))


# -- the HTTP request ------------------------------------------------------------------


class RequestTrace:
    """What ``request`` started for one HTTP request; ``end`` it in the same task."""

    __slots__ = ("_span", "_token", "_var_token")

    def __init__(
        self,
        span_: Span | None,
        token: contextvars.Token[otel_context.Context] | None,
        var_token: contextvars.Token[str | None] | None,
    ) -> None:
        self._span, self._token, self._var_token = span_, token, var_token

    def end(self, status: int) -> None:
        if self._span is not None:
            self._span.set_attribute("http.response.status_code", status)
            if status >= 500:
                self._span.set_status(Status(StatusCode.ERROR))
            self._span.end()
        if self._token is not None:
            otel_context.detach(self._token)
        if self._var_token is not None:
            _request_traceparent.reset(self._var_token)


def request(scope: Scope, traceparent: bytes | None, route: str = "") -> RequestTrace | None:
    """Start the request's trace: a server span continuing the client's ``traceparent``.

    Tracing off: remembers a well-formed ``traceparent`` for the commits the
    request causes (None, and nothing to end, without one). A malformed header
    is ignored: the request starts a trace of its own. The span is named by the
    method and ``route`` (a path group), never by the path the client sent, so
    span names stay few.
    """
    tracer = _tracer
    if tracer is None:
        if traceparent is None:
            return None
        valid = valid_traceparent(traceparent.decode("latin-1"))
        if valid is None:
            return None
        return RequestTrace(None, None, _request_traceparent.set(valid))
    header = None if traceparent is None else valid_traceparent(traceparent.decode("latin-1"))
    method = str(scope.get("method", ""))
    method = method if method in _METHODS else "_OTHER"
    path = str(scope.get("path", ""))[:MAX_PATH]
    started = tracer.start_span(
        f"{method} {route}".rstrip(),
        context=_parent(header) or otel_context.Context(),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    )
    token = otel_context.attach(trace.set_span_in_context(started))
    return RequestTrace(started, token, None)


# -- GraphQL operations ----------------------------------------------------------------


class OperationSpans(SchemaExtension):
    """A span per GraphQL query or mutation (subscriptions: their pushes have spans)."""

    def on_execute(self) -> Iterator[None]:
        tracer = _tracer
        context = self.execution_context
        if tracer is None or context.operation_type.value == "subscription":
            yield
            return
        kind = context.operation_type.value
        name = context.operation_name
        attributes = {"graphql.operation.type": kind}
        if name:
            attributes["graphql.operation.name"] = name[:100]
        with tracer.start_as_current_span(f"graphql.{kind}", attributes=attributes):
            yield


# -- the write side ----------------------------------------------------------------------


class TracedDecider:
    """A decider whose ``decide`` is a ``decide`` span; everything else delegated."""

    def __init__(self, inner: AnyDecider) -> None:
        self.inner = inner
        self.stream_type = inner.stream_type
        self.snapshot_version = inner.snapshot_version

    def stream_id(self, command: Any) -> str:
        return self.inner.stream_id(command)

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def evolve(self, state: Any, event: Any) -> Any:
        return self.inner.evolve(state, event)

    def decide(self, state: Any, command: Any) -> Sequence[Any]:
        with span("decide", attributes={"ledger.command": type(command).__name__}):
            return self.inner.decide(state, command)

    def to_snapshot(self, state: Any) -> Mapping[str, Any]:
        return self.inner.to_snapshot(state)

    def from_snapshot(self, data: Mapping[str, Any]) -> Any:
        return self.inner.from_snapshot(data)


def traced_deciders(deciders: Mapping[type, AnyDecider]) -> Mapping[type, AnyDecider]:
    """``deciders`` with ``decide`` spans while tracing is on; unchanged when off."""
    if _tracer is None:
        return deciders
    wrapped: dict[int, TracedDecider] = {}
    for decider in deciders.values():  # one wrapper per decider, shared by its commands
        wrapped.setdefault(id(decider), TracedDecider(decider))
    return {command: wrapped[id(decider)] for command, decider in deciders.items()}


def stamp_span(started_ns: int, commits: int) -> None:
    """A span for a sequencer pass that stamped ``commits`` (a trace of its own)."""
    tracer = _tracer
    if tracer is None:
        return
    done = tracer.start_span(
        "sequencer.stamp",
        context=otel_context.Context(),
        start_time=started_ns,
        attributes={"ledger.commits": commits},
    )
    done.end()


# -- consumers and pushes -----------------------------------------------------------------


class TracedHandler:
    """A consumer's handler: each batch is a span in every trace it carries.

    The spans start before the batch and end after it, children of the
    traceparents stored with the batch's events (one span per distinct trace, at
    most ``MAX_SPANS_PER_BATCH``; events without one share a span of a new
    trace). When the batch holds one trace, its span is the current one while
    the handler runs, so what the handler sends (a process manager's commands)
    is in that trace too.

    It is an ``EventHandler`` that hands every member of the protocol to
    ``inner``; ``accepts`` included, so its consumer skips the batches ``inner``
    ignores as it would without tracing.
    """

    name: str

    def __init__(self, inner: EventHandler) -> None:
        self.inner = inner
        self.name = inner.name

    async def prepare(self) -> None:
        await self.inner.prepare()

    def accepts(self, event: RecordedEvent) -> bool:
        return self.inner.accepts(event)

    async def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        tracer = _tracer
        if tracer is None or not events:
            await self.inner.handle_batch(events)
            return
        spans = self._start(tracer, events)
        token = None
        if len(spans) == 1:
            token = otel_context.attach(trace.set_span_in_context(spans[0]))
        try:
            await self.inner.handle_batch(events)
        except Exception as error:
            for started in spans:
                _failed(started, error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            for started in spans:
                started.end()

    def _start(self, tracer: Tracer, events: Sequence[RecordedEvent]) -> list[Span]:
        counts: dict[str | None, int] = {}
        for event in events:
            traceparent = event.metadata.traceparent
            if traceparent in counts or len(counts) < MAX_SPANS_PER_BATCH:
                counts[traceparent] = counts.get(traceparent, 0) + 1
        attributes: dict[str, str | int] = {
            "ledger.consumer": self.name,
            "ledger.batch.events": len(events),
            "ledger.batch.first_position": events[0].position or 0,
            "ledger.batch.last_position": events[-1].position or 0,
        }
        return [
            tracer.start_span(
                f"consume {self.name}",
                context=_parent(traceparent) or otel_context.Context(),
                kind=SpanKind.CONSUMER,
                attributes={**attributes, "ledger.trace.events": count},
            )
            for traceparent, count in counts.items()
        ]


def traced_handlers(handlers: Sequence[EventHandler]) -> list[EventHandler]:
    """``handlers`` with consumer spans while tracing is on; unchanged when off."""
    if _tracer is None:
        return list(handlers)
    return [TracedHandler(handler) for handler in handlers]


class PushSpans:
    """Spans for the read-model documents pushed to subscribers (``push live:<topic>``).

    The feed tells which traceparent each position carries (the last
    ``PUSH_MEMORY`` positions); a document published to a ``live:`` topic
    reflects one position, and its push span is a child of that event's trace.
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._traces: OrderedDict[int, str] = OrderedDict()

    def on_batch(self, batch: Sequence[RecordedEvent]) -> None:
        traces = self._traces
        for event in batch:
            traceparent = event.metadata.traceparent
            if traceparent is not None and event.position is not None:
                traces[event.position] = traceparent
        while len(traces) > PUSH_MEMORY:
            traces.popitem(last=False)

    def on_publish(self, topic: str, message: Any) -> None:
        tracer = _tracer
        if tracer is None or not topic.startswith("live:"):
            return
        position = getattr(message, "position", None)
        if not isinstance(position, int):
            return
        traceparent = self._traces.get(position)
        pushed = tracer.start_span(
            f"push {topic.split(':', 2)[1]}",
            context=_parent(traceparent) or otel_context.Context(),
            kind=SpanKind.PRODUCER,
            attributes={
                "ledger.topic": topic,
                "ledger.position": position,
                "ledger.subscribers": self._hub.subscriber_count(topic),
            },
        )
        pushed.end()


def watch_pushes(feed: Feed, hub: Hub) -> PushSpans | None:
    """Push spans for ``hub``'s read-model subscribers while tracing is on (None: off)."""
    if _tracer is None:
        return None
    pushes = PushSpans(hub)
    feed.add_listener(pushes.on_batch)
    hub.add_observer(pushes.on_publish)
    return pushes
