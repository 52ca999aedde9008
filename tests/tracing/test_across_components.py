"""The trace crosses processes through the event store.

Two sets of components share one nx-27017 database, as two server processes
would: a writer (the Application Service only) and a worker (the sequencer, the
projectors and the transfer process manager, each with its own database
client). The worker's tasks start before the request, so the only way the
request's trace can reach them is the traceparent stored in the commit
metadata: their spans must continue it, and so must the process manager's
commands and the commits they write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from application.service import CommandContext, trace_id_of
from domain.accounts import Deposit, OpenAccount
from domain.transfers import RequestTransfer
from runtime import tracing
from runtime.bootstrap import Monitoring, start_components
from runtime.settings import load_settings

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def _in_trace(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and s.context.trace_id == int(TRACE_ID, 16)
    ]


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def _until(exporter: InMemorySpanExporter, names: set[str]) -> list[ReadableSpan]:
    """The request's trace once it holds every one of ``names`` (at most 30 s)."""
    found: list[ReadableSpan] = []
    for _ in range(300):
        found = _in_trace(exporter)
        if names <= {s.name for s in found}:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"missing {names - {s.name for s in found}}")


async def test_a_worker_sharing_the_store_continues_the_trace_of_the_writers_request(
    mongo_url: str, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    settings = load_settings(
        None,
        mongodb_url=mongo_url,
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
        data_dir=str(tmp_path),
        poll_interval_seconds=0.1,
    )
    async with AsyncExitStack() as stack:
        writer = await start_components(settings, stack, Monitoring(), workers=False, api=False)
        worker = await start_components(settings, stack, Monitoring(), workers=True, api=False)
        assert worker.consumers is not None

        scope = {"method": "POST", "path": "/graphql"}
        request = tracing.request(scope, TRACEPARENT.encode(), "/graphql")
        assert request is not None
        try:
            for account in ("acc-a", "acc-b"):
                context = CommandContext(command_id=f"open-{account}")
                await writer.service.handle(OpenAccount(account, "ana", "EUR"), context)
            await writer.service.handle(Deposit("acc-a", 500), CommandContext(command_id="dep"))
            transfer = RequestTransfer("trf-1", "acc-a", "acc-b", 200)
            await writer.service.handle(transfer, CommandContext(command_id="trf"))
        finally:
            request.end(200)

        names = {"consume accounts", "consume transfer_manager", "command DebitForTransfer",
                 "command CreditForTransfer", "command CompleteTransfer"}  # fmt: skip
        trace = await _until(spans, names)
        ids = {s.context.span_id for s in trace if s.context is not None}
        appends = {s.context.span_id for s in _named(trace, "append") if s.context is not None}
        # The worker's consumer spans are children of the writer's append spans.
        for consumed in _named(trace, "consume accounts"):
            assert consumed.parent is not None
            assert consumed.parent.span_id in appends
        # Every span of the trace hangs off another one of it, up to the request's.
        (root,) = _named(trace, "POST /graphql")
        for span in trace:
            if span is not root:
                assert span.parent is not None, span.name
                assert span.parent.span_id in ids, span.name
        # The sequencer's passes are traces of their own (a pass serves many requests).
        assert any(s.name == "sequencer.stamp" for s in spans.get_finished_spans())

        # The manager's commits carry the trace, in the store both sides read.
        for stream in ("acc-a", "acc-b", "trf-1"):
            events = await worker.events.read_stream(stream)
            assert {trace_id_of(e.metadata.traceparent) for e in events} == {TRACE_ID}, stream
