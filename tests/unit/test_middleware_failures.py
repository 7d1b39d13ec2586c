"""Telemetry failures are caught, logged once, and never reach the app."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
from litestar import Litestar, websocket
from litestar.connection import WebSocket
from litestar.exceptions import WebSocketDisconnect
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litestar_ws_otel import Instrumentation, instrument_app, semconv
from litestar_ws_otel import middleware as middleware_module
from litestar_ws_otel.session import Session


@websocket("/echo")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    text = await socket.receive_text()
    await socket.send_text(text.upper())
    await socket.close(code=1000)


def scope(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "scheme": "ws",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
    }
    base.update(overrides)
    return base


async def converse(app: Litestar, connection_scope: dict[str, Any]) -> list[dict[str, Any]]:
    incoming = iter(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.disconnect", "code": 1000, "reason": ""},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(connection_scope, receive, send)  # type: ignore[arg-type]
    return sent


EXPECTED = [
    {"type": "websocket.accept", "subprotocol": None, "headers": []},
    {"type": "websocket.send", "text": "HI", "bytes": None},
    {"type": "websocket.close", "code": 1000, "reason": ""},
]


def instrumented(*processors: SpanProcessor) -> tuple[Litestar, InMemorySpanExporter]:
    provider = TracerProvider()
    for processor in processors:
        provider.add_span_processor(processor)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Litestar([echo], logging_config=None)  # Litestar's logging set-up would replace caplog's handler
    instrument_app(app, tracer_provider=provider)
    return app, exporter


async def test_a_client_close_racing_a_send_is_recorded_as_the_client_sent_it() -> None:
    """A broadcast fails (uvicorn's ClientDisconnected is an OSError) before the app reads the close frame."""

    @websocket("/echo")
    async def broadcast_then_read(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.receive_text()
        with contextlib.suppress(OSError):  # as a channels sender does
            await socket.send_text("broadcast")
        with contextlib.suppress(WebSocketDisconnect):
            await socket.receive_text()

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Litestar([broadcast_then_read], logging_config=None)
    instrument_app(app, tracer_provider=provider)
    incoming = iter(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.disconnect", "code": 1000, "reason": "bye"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise ConnectionResetError("the client is gone")

    await app(scope(), receive, send)  # type: ignore[arg-type]
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes[semconv.WEBSOCKET_CLOSE_CODE] == 1000  # not the 1006 the failed send suggested
    assert span.attributes[semconv.WEBSOCKET_CLOSE_REASON] == "bye"
    assert span.attributes[semconv.WEBSOCKET_CLOSE_INITIATOR] == "client"


class ExplodingProcessor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor is broken")


async def test_a_failing_span_processor_is_logged_once_and_the_app_is_unaffected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = instrumented(ExplodingProcessor())
    with caplog.at_level(logging.DEBUG, logger="litestar_ws_otel"):
        assert await converse(app, scope()) == EXPECTED
        assert await converse(app, scope()) == EXPECTED
    reports = [r for r in caplog.records if "could not end a WebSocket session span" in r.getMessage()]
    assert len(reports) == 1
    assert reports[0].exc_info is not None


async def test_a_broken_scope_is_passed_through_untraced(caplog: pytest.LogCaptureFixture) -> None:
    app, exporter = instrumented()
    with caplog.at_level(logging.DEBUG, logger="litestar_ws_otel"):
        # headers that are not pairs break the handshake attributes, not the connection
        sent = await converse(app, scope(headers=[(b"host", b"testserver")], query_string=42))
    assert sent == EXPECTED
    assert exporter.get_finished_spans() == ()
    assert "could not start tracing a WebSocket connection" in caplog.text


async def test_a_failing_event_writer_still_ends_the_span(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, exporter = instrumented()

    def broken(*args: object) -> None:
        raise ValueError("cannot write events")

    monkeypatch.setattr(middleware_module.spans, "write_events", broken)
    assert await converse(app, scope()) == EXPECTED
    (span,) = exporter.get_finished_spans()
    assert span.end_time is not None
    assert "could not record a WebSocket session's events" in caplog.text


async def test_a_failing_span_start_leaves_the_connection_alone(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, exporter = instrumented()

    def broken(self: object) -> None:
        raise RuntimeError("no tracer")

    monkeypatch.setattr(middleware_module._Connection, "_start_span", broken)
    assert await converse(app, scope()) == EXPECTED
    assert exporter.get_finished_spans() == ()
    assert "could not record a received WebSocket message" in caplog.text
    assert "could not start a WebSocket session span" in caplog.text


async def test_a_recording_error_in_send_is_logged_and_the_message_still_sent(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, exporter = instrumented()

    def broken(self: Session, direction: str, payload: object) -> None:
        raise RuntimeError("ring is broken")

    monkeypatch.setattr(Session, "on_message", broken)
    assert await converse(app, scope()) == EXPECTED
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes[semconv.WEBSOCKET_CLOSE_CODE] == 1000
    assert "could not record a sent WebSocket message" in caplog.text


async def test_a_second_instrumentation_layer_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection already marked as instrumented is not traced twice (e.g. nested apps)."""
    app, exporter = instrumented()
    state: dict[str, Any] = {}
    outer = middleware_module._CURRENT.set((state, object()))  # type: ignore[arg-type]
    try:
        assert await converse(app, scope(state=state)) == EXPECTED
    finally:
        middleware_module._CURRENT.reset(outer)
    assert exporter.get_finished_spans() == ()
    assert await converse(app, scope(state={})) == EXPECTED  # another connection in the same context is traced
    assert len(exporter.get_finished_spans()) == 1


def bare_connection(handle: Instrumentation, provider: TracerProvider) -> Any:
    """A connection of the middleware on its own, driven without an app around it."""
    middleware = middleware_module.WebSocketTelemetryMiddleware(
        config=handle.config,
        tracer=provider.get_tracer("t"),
        policy=middleware_module.PreviewPolicy(False, 8, False, 8),
        owner=handle.processor,
        statistics=handle.statistics,
    )
    return middleware_module._Connection(middleware, scope())  # type: ignore[arg-type]


def test_end_is_idempotent() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Litestar([echo])
    handle = instrument_app(app, tracer_provider=provider)
    connection = bare_connection(handle, provider)
    connection.end(escaped=False)
    connection.end(escaped=False)
    assert len(exporter.get_finished_spans()) == 1


async def test_a_sampled_out_session_is_neither_exported_nor_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    provider = TracerProvider(sampler=ALWAYS_OFF)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Litestar([echo], logging_config=None)
    handle = instrument_app(app, tracer_provider=provider)

    def must_not_run(*args: object) -> None:
        raise AssertionError("events are built for a span nobody records")

    monkeypatch.setattr(middleware_module.spans, "write_events", must_not_run)
    assert await converse(app, scope()) == EXPECTED
    assert exporter.get_finished_spans() == ()
    assert handle.processor.sessions() == []


async def test_unexpected_message_types_are_one_kind_of_report(caplog: pytest.LogCaptureFixture) -> None:
    """A peer choosing new message types cannot grow the set of reported kinds or flood the log."""
    from litestar_ws_otel import reporting

    provider = TracerProvider()
    app = Litestar([echo], logging_config=None)
    handle = instrument_app(app, tracer_provider=provider)
    connection = bare_connection(handle, provider)
    incoming = iter([{"type": f"websocket.bogus.{index}"} for index in range(50)])

    async def receive() -> dict[str, Any]:
        return next(incoming)

    wrapped = connection.receive_from(receive)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="litestar_ws_otel"):
        for index in range(50):
            assert await wrapped() == {"type": f"websocket.bogus.{index}"}
    connection.end(escaped=False)
    records = [r for r in caplog.records if "unexpected ASGI message" in r.getMessage()]
    assert len(records) == 1
    assert "'websocket.bogus.0'" in records[0].getMessage()
    assert reporting._reported == {"unexpected ASGI message from the server"}
