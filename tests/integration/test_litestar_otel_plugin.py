"""Litestar's OpenTelemetry middleware is found by what it is, wherever the installed Litestar keeps it.

Litestar 2.15 to 2.21 keep it in ``litestar.contrib.opentelemetry``, 2.22 and later in
``litestar.plugins.opentelemetry``; ``instrument_app`` imports neither, so these tests block both
and run on the oldest and the newest Litestar the suite installs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from opentelemetry.trace import SpanKind

from litestar_ws_otel import instrument_app, reporting
from tests.apps import echo
from tests.integration.conftest import finished_spans
from tests.litestar_compat import OpenTelemetryConfig, OpenTelemetryInstrumentationMiddleware, OpenTelemetryPlugin

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    ProviderAndExporter = tuple[TracerProvider, InMemorySpanExporter]

pytestmark = pytest.mark.integration

OTEL_MODULES = (
    "litestar.plugins.opentelemetry",
    "litestar.plugins.opentelemetry.middleware",
    "litestar.contrib.opentelemetry",
    "litestar.contrib.opentelemetry.middleware",
)


class TaggingMiddleware(OpenTelemetryInstrumentationMiddleware):
    """A user's subclass, set with ``OpenTelemetryConfig(middleware_class=...)``."""


def otel_app(provider: TracerProvider, how: str) -> Litestar:
    """An app traced by Litestar's OpenTelemetry middleware, added ``how`` a user may add it."""
    if how == "plugin":
        return Litestar([echo], plugins=[OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider))])
    if how == "subclass":
        config = OpenTelemetryConfig(tracer_provider=provider, middleware_class=TaggingMiddleware)
        return Litestar([echo], plugins=[OpenTelemetryPlugin(config)])
    # As middleware: Litestar moves it into an OpenTelemetryPlugin of its own.
    return Litestar([echo], middleware=[OpenTelemetryConfig(tracer_provider=provider).middleware])


def converse(app: Litestar) -> None:
    with TestClient(app) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "hello"


def session_and_server_spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ReadableSpan]:
    spans = finished_spans(exporter, 2)
    (ours,) = (span for span in spans if span.name == "WS /echo" and span.kind is SpanKind.INTERNAL)
    (server,) = (span for span in spans if span.kind is SpanKind.SERVER)
    return ours, server


@pytest.mark.parametrize("how", ["plugin", "subclass", "middleware"])
def test_session_span_is_the_child_of_litestar_server_span_without_importing_litestar_otel_modules(
    provider_and_exporter: ProviderAndExporter, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    provider, exporter = provider_and_exporter
    app = otel_app(provider, how)
    for name in OTEL_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # an import of any of them now raises ImportError
    instrument_app(app, tracer_provider=provider)
    monkeypatch.undo()

    converse(app)

    ours, server = session_and_server_spans(exporter)
    assert ours.parent is not None
    assert ours.parent.span_id == server.context.span_id
    assert ours.context.trace_id == server.context.trace_id


def test_an_app_handler_wrapped_over_litestar_otel_middleware_is_reported_and_still_traced(
    provider_and_exporter: ProviderAndExporter,
) -> None:
    provider, exporter = provider_and_exporter
    app = otel_app(provider, "plugin")
    inner = app.asgi_handler

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)

    app.asgi_handler = wrapper
    instrument_app(app, tracer_provider=provider)
    assert any("OpenTelemetry middleware was not found" in reported for reported in reporting._reported)

    converse(app)

    (ours,) = (span for span in finished_spans(exporter, 2) if span.name == "WS /echo")
    assert ours.kind is SpanKind.SERVER  # a root of its own, beside Litestar's SERVER span
    assert ours.parent is None
