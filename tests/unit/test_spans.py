"""Building the session span from a scope and a finished ``Session``: names, attributes, events, status."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from litestar.exceptions import HTTPException, NotFoundException, WebSocketDisconnect, WebSocketException
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.session import MessageRecord, PreviewPolicy, Session
from litestar_ws_otel.spans import (
    end_attributes,
    error_type,
    is_server_error,
    mark_error,
    primary_exception,
    read_handshake,
    route_of,
    server_error_type,
    span_name,
    write_events,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

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
    mark_error(span, record, server_error_type(record, escaped=False))
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


# --- exception groups, status and events at their edges -----------------------------------------


def _disconnect(code: int = 1001) -> WebSocketDisconnect:
    return WebSocketDisconnect(detail="gone", code=code)


def test_the_first_real_error_of_a_group_is_the_primary_exception() -> None:
    first, second = ValueError("first"), KeyError("second")
    group = BaseExceptionGroup("g", [_disconnect(), BaseExceptionGroup("inner", [_disconnect(), first]), second])
    assert primary_exception(group) is first


def test_a_group_of_disconnects_only_is_its_first_disconnect() -> None:
    first, second = _disconnect(1000), _disconnect(1001)
    assert primary_exception(BaseExceptionGroup("g", [BaseExceptionGroup("inner", [first]), second])) is first


def test_an_exception_outside_a_group_is_its_own_primary_exception() -> None:
    exc = RuntimeError("x")
    assert primary_exception(exc) is exc


def test_a_group_decides_the_status_and_error_type_by_its_first_real_error() -> None:
    record = session()
    record.on_exception(BaseExceptionGroup("g", [_disconnect(), WebSocketException(detail="x", code=4001)]))
    assert is_server_error(record, escaped=False) is False
    failed = session()
    failed.on_exception(BaseExceptionGroup("g", [_disconnect(), KeyError("k")]))
    assert is_server_error(failed, escaped=False) is True
    assert error_type(failed) == "KeyError"


def test_an_exception_escaping_the_handler_is_a_server_error_even_unrecorded() -> None:
    assert is_server_error(session(), escaped=True) is True
    assert is_server_error(session(), escaped=False) is False


def test_error_type_without_exception_or_close_is_other() -> None:
    assert error_type(session()) == "_OTHER"


def test_end_attributes_take_the_dropped_count_they_are_given() -> None:
    record = session()
    for _ in range(12):  # 10 kept, 2 dropped
        record.on_message("received", "x")
    assert end_attributes(record)["websocket.events.dropped"] == 2
    assert end_attributes(record, dropped=5)["websocket.events.dropped"] == 5
    assert end_attributes(record, dropped=0)["websocket.events.dropped"] == 0


def _finished_span(record: Session, records: list[MessageRecord] | None = None, *, escaped: bool = False) -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("WS /chat/{room}")
    write_events(span, record, records)
    mark_error(span, record, server_error_type(record, escaped=escaped))
    span.end()
    provider.shutdown()
    (finished,) = exporter.get_finished_spans()
    return finished


def _record(time_ns: int, message_id: int = 1) -> MessageRecord:
    return MessageRecord(time_ns, "received", "text", message_id, 1, "x", False)


def test_write_events_writes_the_records_it_is_given() -> None:
    record = session()
    record.on_message("received", "old")
    given = [_record(record.started_ns + 5, message_id=7)]
    finished = _finished_span(record, given)
    assert [(event.name, event.attributes["websocket.message.id"]) for event in finished.events] == [
        ("websocket.receive", 7)
    ]


def test_a_lifecycle_event_at_a_messages_time_comes_first() -> None:
    record = session()
    record.accepted_ns = 100
    finished = _finished_span(record, [_record(100), _record(200, message_id=2)])
    assert [(event.name, event.timestamp) for event in finished.events] == [
        ("websocket.accept", 100),
        ("websocket.receive", 100),
        ("websocket.receive", 200),
    ]


def test_lifecycle_events_at_one_time_keep_accept_exception_close_order() -> None:
    """A coarse clock can give them one timestamp; the order they happened in stays."""
    record = session()
    record.on_accept(None)
    record.on_exception(RuntimeError("boom"))
    record.on_close(1011, "failed", "server")
    record.accepted_ns = record.exception_ns = 100
    object.__setattr__(record.close, "time_ns", 100)
    finished = _finished_span(record, [])
    assert [event.name for event in finished.events] == ["websocket.accept", "exception", "websocket.close"]
    exception, close = finished.events[1], finished.events[2]
    assert (exception.attributes["exception.type"], exception.attributes["exception.message"]) == (
        "RuntimeError",
        "boom",
    )
    assert dict(close.attributes) == {
        "websocket.close.code": 1011,
        "websocket.close.reason": "failed",
        "websocket.close.initiator": "server",
    }


def test_a_client_disconnect_is_no_exception_event() -> None:
    record = session()
    record.on_accept(None)
    record.on_exception(_disconnect())
    assert record.exception_ns is not None
    finished = _finished_span(record)
    assert [event.name for event in finished.events] == ["websocket.accept"]


def test_an_escaped_exception_sets_error_status_without_a_description() -> None:
    finished = _finished_span(session(), escaped=True)
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description is None
    assert finished.attributes["error.type"] == "_OTHER"


def test_close_1011_sets_error_status_with_no_description() -> None:
    record = session()
    record.on_close(1011, "", "server")
    finished = _finished_span(record)
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description is None
    assert finished.attributes["error.type"] == "1011"


def test_a_normal_close_leaves_the_status_unset() -> None:
    record = session()
    record.on_close(1000, "", "server")
    finished = _finished_span(record)
    assert finished.status.status_code is StatusCode.UNSET
    assert "error.type" not in finished.attributes
