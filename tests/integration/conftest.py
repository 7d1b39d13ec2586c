"""Fixtures for integration tests: a fresh SDK provider with an in-memory exporter, instrumented apps, live servers."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app
from tests.servers import LiveServer, run_server, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence

    from opentelemetry.sdk.trace import Event, ReadableSpan

__all__ = (
    "attribute",
    "event_names",
    "events_named",
    "finished_spans",
    "spans_named",
)


def finished_spans(exporter: InMemorySpanExporter, count: int, timeout: float = 10.0) -> tuple[ReadableSpan, ...]:
    """Wait until at least ``count`` spans have ended and return all finished spans."""
    return wait_for(
        lambda: spans if len(spans := exporter.get_finished_spans()) >= count else None,
        timeout=timeout,
        what=f"{count} finished span(s)",
    )


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """All finished spans called ``name``."""
    return [span for span in exporter.get_finished_spans() if span.name == name]


def attribute(span: ReadableSpan, name: str) -> Any:
    """One attribute of ``span``, or ``None`` when it is not set."""
    return (span.attributes or {}).get(name)


def events_named(span: ReadableSpan, name: str) -> list[Event]:
    """The events of ``span`` called ``name``, in recorded order."""
    return [event for event in span.events if event.name == name]


def event_names(span: ReadableSpan) -> list[str]:
    """The names of all events of ``span``, in recorded order."""
    return [event.name for event in span.events]


@pytest.fixture
def make_instrumented_app(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> Callable[..., tuple[Litestar, Instrumentation]]:
    """Factory: ``(route_handlers, *, config=None, debug=True, **litestar_kwargs) -> (app, handle)``."""
    provider, _ = provider_and_exporter

    def make(
        route_handlers: Sequence[Any],
        *,
        config: WebSocketTelemetryConfig | None = None,
        debug: bool = True,
        **litestar_kwargs: Any,
    ) -> tuple[Litestar, Instrumentation]:
        app = Litestar(route_handlers=list(route_handlers), debug=debug, **litestar_kwargs)
        handle = instrument_app(app, config, tracer_provider=provider)
        return app, handle

    return make


@pytest.fixture
def live_server() -> Generator[Callable[[Any], LiveServer], None, None]:
    """Factory: ``live_server(app) -> LiveServer``; every server started is stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, **options: Any) -> LiveServer:
            return stack.enter_context(run_server(app, **options))

        yield start
