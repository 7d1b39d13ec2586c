"""The statistics of one app and the metrics read from them: one set of numbers, current while sessions are open."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from opentelemetry.metrics import MeterProvider as ApiMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.metrics import DURATION_BUCKETS, WebSocketMetrics
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.statistics import SessionStatistics
from tests.apps import echo

POLICY = PreviewPolicy(
    capture_payloads=False, max_payload_bytes=8, capture_binary_preview=False, binary_preview_bytes=8
)
SECOND = 1_000_000_000


def session(route: str | None = "/chat/{room}", started_ns: int = 0) -> Session:
    record = Session(policy=POLICY, max_messages=4, route=route, started_ns=started_ns)
    record.on_accept(None)
    return record


def close(statistics: SessionStatistics, record: Session, code: int, seconds: float, error: str | None = None) -> None:
    record.on_close(code, "", "client")
    record.finish()
    record.ended_ns = record.started_ns + int(seconds * SECOND)
    statistics.closed(record, error_type=error)


def test_the_numbers_of_a_known_set_of_sessions() -> None:
    statistics = SessionStatistics()
    records = [session(started_ns=index * SECOND) for index in range(5)]
    for record in records:
        statistics.opened(record)
    records[0].on_message("received", "héllo")  # 6 bytes
    records[0].on_message("sent", b"\x00\x01")
    records[1].on_message("sent", "ok")
    for record, code, seconds, error in zip(
        records[:4], (1000, 1000, 1011, 1001), (1, 2, 3, 10), (None, None, "1011", None), strict=True
    ):
        close(statistics, record, code, seconds, error)
    records[4].on_message("received", "still open")
    snapshot = statistics.snapshot().as_json()
    assert snapshot == {
        "connections_total": 5,
        "connections_open": 1,
        "messages_received": 2,
        "messages_sent": 2,
        "bytes_received": 6 + 10,
        "bytes_sent": 2 + 2,
        "duration_seconds": {"p50": 2.5, "p95": pytest.approx(8.95), "max": 10.0},
        "close_codes": {"1000": 2, "1001": 1, "1011": 1},
        "errors": 1,
    }


def test_counts_are_current_while_open_and_never_go_back_when_a_session_closes() -> None:
    statistics = SessionStatistics()
    record = session()
    statistics.opened(record)
    record.on_message("received", "a")
    record.on_message("received", b"b")
    before = statistics.messages()
    assert before == {("/chat/{room}", "received", "text"): 1, ("/chat/{room}", "received", "binary"): 1}
    assert statistics.active_connections() == {"/chat/{room}": 1}
    close(statistics, record, 1000, 1)
    assert statistics.messages() == before
    assert statistics.bytes() == {("/chat/{room}", "received"): 2}
    assert statistics.active_connections() == {"/chat/{room}": 0}  # 0 rather than gone, once quiet
    statistics.closed(record, error_type=None)  # a second close changes nothing
    assert statistics.snapshot().connections_total == 1
    assert sum(statistics.messages().values()) == 2


def test_a_session_counts_as_active_from_accept_to_close() -> None:
    statistics = SessionStatistics()
    record = Session(policy=POLICY, max_messages=4, route="/x")
    statistics.opened(record)
    assert statistics.active_connections() == {}  # not accepted yet
    record.on_accept(None)
    assert statistics.active_connections() == {"/x": 1}
    record.on_close(1000, "", "client")
    assert statistics.active_connections() == {}  # closed, though its span has not ended


def test_recent_durations_are_bounded() -> None:
    statistics = SessionStatistics(recent_durations=3)
    for seconds in (100, 1, 2, 3):
        record = session()
        statistics.opened(record)
        close(statistics, record, 1000, seconds)
    snapshot = statistics.snapshot()
    assert (snapshot.duration_p50, snapshot.duration_max) == (2.0, 100.0)  # the max is kept apart


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == "litestar_ws_otel"
            for metric in scope_metrics.metrics:
                found[metric.name] = [metric.unit, list(metric.data.data_points)]
    return found


def test_metrics_read_the_statistics_with_the_documented_names_units_and_attributes() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    statistics = SessionStatistics()
    WebSocketMetrics(meters, "0").attach(statistics)
    open_record, closed_record, unrouted = session(), session(), session(route=None)
    for record in (open_record, closed_record, unrouted):
        statistics.opened(record)
    open_record.on_message("received", "hi")
    closed_record.on_message("sent", b"\x00")
    close(statistics, closed_record, 1011, 5400, error="RuntimeError")  # an hour and a half
    metrics = collect(reader)
    unit, active = metrics["websocket.server.active_connections"]
    assert unit == "{connection}"
    assert sorted((sorted(dict(p.attributes).items()), p.value) for p in active) == [
        ([], 1),
        ([("http.route", "/chat/{room}")], 1),
    ]
    unit, messages = metrics["websocket.server.messages"]
    assert unit == "{message}"
    assert sorted((sorted(dict(p.attributes).items()), p.value) for p in messages) == [
        (
            [
                ("http.route", "/chat/{room}"),
                ("websocket.message.direction", "received"),
                ("websocket.message.type", "text"),
            ],
            1,
        ),
        (
            [
                ("http.route", "/chat/{room}"),
                ("websocket.message.direction", "sent"),
                ("websocket.message.type", "binary"),
            ],
            1,
        ),
    ]
    unit, payload_bytes = metrics["websocket.server.bytes"]
    assert unit == "By"
    assert sorted(p.value for p in payload_bytes) == [1, 2]
    unit, (duration,) = metrics["websocket.server.connection.duration"]
    assert unit == "s"
    assert dict(duration.attributes) == {
        "http.route": "/chat/{room}",
        "websocket.close.code": 1011,
        "error.type": "RuntimeError",
    }
    assert duration.count == 1
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    assert duration.explicit_bounds[-1] >= 24 * 3600  # buckets reach a day, not the HTTP 10 s
    meters.shutdown()


def test_an_app_on_a_meter_provider_reports_its_sessions_and_a_second_app_adds_to_them() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    for _ in range(2):
        app = Litestar(route_handlers=[echo])
        handle = instrument_app(app, WebSocketTelemetryConfig(), tracer_provider=tracers, meter_provider=meters)
        with TestClient(app) as client, client.websocket_connect("/echo") as ws:
            ws.send_text("x")
            assert ws.receive_text() == "x"
        assert handle.statistics.snapshot().messages_sent == 1
    (metrics,) = [collect(reader)]
    (received,) = [
        p for p in metrics["websocket.server.messages"][1] if p.attributes["websocket.message.direction"] == "received"
    ]
    assert received.value == 2
    assert metrics["websocket.server.connection.duration"][1][0].count == 2
    meters.shutdown()
    tracers.shutdown()


class BrokenMeterProvider(ApiMeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("meter provider exploded")


def test_a_meter_provider_that_raises_is_logged_once_and_the_app_is_untouched(caplog: pytest.LogCaptureFixture) -> None:
    tracers = TracerProvider()
    for _ in range(2):
        app = Litestar(route_handlers=[echo], logging_config=None)
        with caplog.at_level(logging.WARNING, logger="litestar_ws_otel"):
            handle = instrument_app(app, tracer_provider=tracers, meter_provider=BrokenMeterProvider())
        with TestClient(app) as client, client.websocket_connect("/echo") as ws:
            ws.send_text("still works")
            assert ws.receive_text() == "still works"
        assert handle.statistics.snapshot().messages_received == 1  # the panel's numbers go on
    reports = [r for r in caplog.records if "could not create the WebSocket metrics" in r.getMessage()]
    assert len(reports) == 1
    tracers.shutdown()


def test_a_wrong_meter_provider_is_refused_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="meter_provider must be an opentelemetry.metrics.MeterProvider"):
        instrument_app(Litestar(route_handlers=[echo]), meter_provider=object())  # type: ignore[arg-type]


def test_durations_wait_for_the_reader_in_a_bounded_queue() -> None:
    statistics = SessionStatistics(recent_durations=3)
    record = session()
    statistics.opened(record)
    close(statistics, record, 1000, 1)
    assert statistics.take_durations() == []  # no metrics read them: nothing is kept for a reader
    statistics.record_durations()
    for seconds in (1, 2, 3, 4, 5):
        record = session(route="/r")
        statistics.opened(record)
        close(statistics, record, 1001, seconds, error="1011" if seconds == 5 else None)
    taken = statistics.take_durations()
    assert [(c.seconds, c.route, c.close_code, c.error_type) for c in taken] == [
        (3.0, "/r", 1001, None),
        (4.0, "/r", 1001, None),
        (5.0, "/r", 1001, "1011"),
    ]  # the newest three: a reader that never comes costs a bounded queue
    assert statistics.take_durations() == []


# --- sums, per-kind keys and the percentiles' cache ---------------------------------------------


def test_closed_sessions_add_up_per_route_direction_and_type() -> None:
    statistics = SessionStatistics()
    for _ in range(2):
        record = session(route="/r")
        statistics.opened(record)
        record.on_message("received", b"\x00\x01")  # binary in: 2 bytes
        record.on_message("sent", "abc")  # text out: 3 bytes
        record.on_message("sent", "de")
        close(statistics, record, 1000, 1)
    assert statistics.messages() == {("/r", "received", "binary"): 2, ("/r", "sent", "text"): 4}
    assert statistics.bytes() == {("/r", "received"): 4, ("/r", "sent"): 10}
    snapshot = statistics.snapshot()
    assert (snapshot.messages_received, snapshot.messages_sent) == (2, 4)
    assert (snapshot.bytes_received, snapshot.bytes_sent) == (4, 10)


def test_two_open_sessions_on_one_route_count_two() -> None:
    statistics = SessionStatistics()
    for route in ("/r", "/r", None):
        statistics.opened(session(route=route))
    assert statistics.active_connections() == {"/r": 2, None: 1}
    assert statistics.snapshot().connections_open == 3


def test_every_error_counts() -> None:
    statistics = SessionStatistics()
    for error in ("RuntimeError", "1011", None):
        record = session()
        statistics.opened(record)
        close(statistics, record, 1011, 1, error)
    assert statistics.snapshot().errors == 2


def test_the_percentiles_follow_every_close() -> None:
    """They are cached between closes: a snapshot after each close sees it."""
    statistics = SessionStatistics()
    expected = [(2.0, 2.0, 2.0), (3.0, 3.9, 4.0), (4.0, 5.8, 6.0)]  # one, two, three sessions
    for seconds, (p50, p95, maximum) in zip((2, 4, 6), expected, strict=True):
        record = session()
        statistics.opened(record)
        close(statistics, record, 1000, seconds)
        snapshot = statistics.snapshot()
        assert (snapshot.duration_p50, snapshot.duration_p95, snapshot.duration_max) == (
            pytest.approx(p50),
            pytest.approx(p95),
            maximum,
        )


def test_no_durations_have_no_percentiles() -> None:
    from litestar_ws_otel.statistics import _percentiles

    snapshot = SessionStatistics().snapshot()
    assert (snapshot.duration_p50, snapshot.duration_p95, snapshot.duration_max) == (None, None, None)
    assert _percentiles([]) == (None, None)
    assert _percentiles([7.0]) == (7.0, 7.0)


def test_a_session_that_ended_without_a_close_waits_with_no_close_code() -> None:
    statistics = SessionStatistics()
    statistics.record_durations()
    record = session(route="/r")
    statistics.opened(record)
    record.finish()  # the handshake failed: no close frame either way
    statistics.closed(record, error_type="RuntimeError")
    (closed,) = statistics.take_durations()
    assert (closed.route, closed.close_code, closed.error_type) == ("/r", None, "RuntimeError")
    assert statistics.snapshot().close_codes == {}
