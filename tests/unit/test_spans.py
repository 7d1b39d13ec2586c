"""Building the session span from a scope and a finished ``Session``: names, attributes, events, status."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.exceptions import HTTPException, NotFoundException, WebSocketException
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.spans import (
    end_attributes,
    error_type,
    is_server_error,
    read_handshake,
    route_of,
    set_status,
    span_name,
    write_events,
)

POLICY = PreviewPolicy(
    capture_payloads=True, max_payload_bytes=16, capture_binary_preview=False, binary_preview_bytes=4
)


def session() -> Session:
    return Session(policy=POLICY, max_messages=10, path="/chat/1")


def test_route_of_joins_root_path_and_template() -> None:
    assert route_of({"path_template": "/chat/{room}", "root_path": "/api/"}) == "/api/chat/{room}"  # type: ignore[typeddict-item]
    assert route_of({"path_template": "/chat/{room}"}) == "/chat/{room}"  # type: ignore[typeddict-item]
    assert route_of({}) is None  # type: ignore[typeddict-item]


def test_span_name_uses_the_route_never_the_path() -> None:
    assert span_name("/chat/{room}") == "WS /chat/{room}"
    assert span_name(None) == "WS"


def test_one_header_pass_captures_and_carries_trace_context() -> None:
    """A propagation header the config also captures is both shown and handed to the propagator."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    scope: Any = {
        "type": "websocket",
        "headers": [(b"Traceparent", traceparent.encode()), (b"baggage", b"a=1"), (b"baggage", b"b=2")],
    }
    handshake = read_handshake(scope, "/", WebSocketTelemetryConfig(capture_headers=("traceparent",)))
    assert handshake.attributes["http.request.header.traceparent"] == (traceparent,)
    assert "http.request.header.baggage" not in handshake.attributes
    assert handshake.carrier == {"traceparent": traceparent, "baggage": "a=1,b=2"}


@pytest.mark.parametrize(
    ("exc", "server_error"),
    [
        (WebSocketException(detail="x", code=1011), True),
        (WebSocketException(detail="x", code=4500), True),
        (WebSocketException(detail="x", code=4599), True),
        (WebSocketException(detail="x", code=4001), False),
        (HTTPException(status_code=500), True),
        (NotFoundException(), False),
        (RuntimeError("boom"), True),
    ],
)
def test_exception_class_decides_server_error(exc: Exception, server_error: bool) -> None:
    record = session()
    record.on_exception(exc)
    assert is_server_error(record, escaped=False) is server_error


@pytest.mark.parametrize(
    ("code", "initiator", "server_error"),
    [(1011, "server", True), (4500, "server", True), (1000, "server", False), (1011, "client", False)],
)
def test_close_code_decides_without_an_exception(code: int, initiator: str, server_error: bool) -> None:
    record = session()
    record.on_close(code, "", initiator)
    assert is_server_error(record, escaped=False) is server_error


def test_error_type_names_the_exception_class_or_the_close_code() -> None:
    class CustomError(Exception):
        pass

    record = session()
    record.on_exception(CustomError())
    assert error_type(record) == f"{__name__}.{CustomError.__qualname__}"
    builtin = session()
    builtin.on_exception(ValueError())
    assert error_type(builtin) == "ValueError"
    closed = session()
    closed.on_close(1011, "", "server")
    assert error_type(closed) == "1011"


def test_end_attributes_carry_counters_and_close() -> None:
    record = session()
    record.on_accept("chat")
    record.on_message("received", "hé")
    record.on_message("sent", b"\x00\x01")
    record.on_close(1000, "bye", "client")
    assert end_attributes(record) == {
        "websocket.messages.received": 1,
        "websocket.messages.sent": 1,
        "websocket.bytes.received": 3,
        "websocket.bytes.sent": 2,
        "websocket.events.dropped": 0,
        "http.response.status_code": 101,
        "websocket.subprotocol": "chat",
        "websocket.close.code": 1000,
        "websocket.close.reason": "bye",
        "websocket.close.initiator": "client",
    }


def test_events_are_written_in_time_order_with_status() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    record = session()
    record.on_accept(None)
    record.on_message("received", "ping")
    record.on_exception(RuntimeError("boom"))
    record.on_message("sent", "pong")
    record.on_close(1011, "", "server")
    span = provider.get_tracer("t").start_span("WS /chat/{room}")
    write_events(span, record)
    set_status(span, record, escaped=False)
    span.end()
    (finished,) = exporter.get_finished_spans()
    assert [event.name for event in finished.events] == [
        "websocket.accept",
        "websocket.receive",
        "exception",
        "websocket.send",
        "websocket.close",
    ]
    times = [event.timestamp for event in finished.events]
    assert times == sorted(times)
    assert finished.events[1].attributes == {
        "websocket.message.type": "text",
        "websocket.message.id": 1,
        "websocket.message.size": 4,
        "websocket.message.payload": "ping",
        "websocket.message.truncated": False,
    }
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "RuntimeError('boom')"
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "RuntimeError"
    provider.shutdown()
