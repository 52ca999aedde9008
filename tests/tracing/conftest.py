"""Tracing turned on for one test through the test hook: the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime import tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into the SDK's in-memory exporter, for this test only."""
    assert not tracing.enabled()
    exporter = InMemorySpanExporter()
    assert tracing.configure(environ={}, exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()
