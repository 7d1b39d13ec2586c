"""Fixtures shared by every test suite: fresh SDK tracer providers, shut down after the test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litestar_ws_otel import reporting

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def fresh_reports() -> Iterator[None]:
    """Each test sees telemetry problems reported afresh: the log-once memory lives as long as the process.

    Not through ``monkeypatch``, whose teardown would then come after every other fixture's.
    """
    kept = reporting._reported
    reporting._reported = set()
    yield
    reporting._reported = kept


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A fresh SDK provider without processors; shut down after the test."""
    provider = TracerProvider()
    yield provider
    provider.shutdown()


@pytest.fixture
def provider_and_exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A fresh SDK provider exporting synchronously to memory; shut down after the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()
