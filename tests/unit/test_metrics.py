"""The instruments of a meter provider: scope, descriptions, sums over apps, the duration buckets, failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from litestar_ws_otel.metrics import DURATION_BUCKETS, WebSocketMetrics, _duration_histogram, duration_view, metrics_for
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.statistics import SessionStatistics

POLICY = PreviewPolicy(
    capture_payloads=False, max_payload_bytes=8, capture_binary_preview=False, binary_preview_bytes=8
)


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    """Each metric by name, with its scope."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: (scope_metrics.scope, metric)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def open_session(statistics: SessionStatistics, route: str | None = "/r") -> Session:
    session = Session(policy=POLICY, max_messages=2, route=route)
    statistics.opened(session)
    session.on_accept(None)
    return session


def test_the_instruments_carry_the_version_and_their_descriptions() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    statistics = SessionStatistics()
    metrics_for(meters, "1.2.3").attach(statistics)
    session = open_session(statistics)
    session.on_message("received", "x")
    session.on_close(1000, "", "client")
    session.finish()
    statistics.closed(session, error_type=None)
    found = collect(reader)
    assert {name: (scope.name, scope.version) for name, (scope, _) in found.items()} == dict.fromkeys(
        (
            "websocket.server.active_connections",
            "websocket.server.messages",
            "websocket.server.bytes",
            "websocket.server.connection.duration",
        ),
        ("litestar_ws_otel", "1.2.3"),
    )
    assert {name: metric.description for name, (_, metric) in found.items()} == {
        "websocket.server.active_connections": "WebSocket connections accepted and not yet closed.",
        "websocket.server.messages": "WebSocket messages received and sent.",
        "websocket.server.bytes": "Payload bytes of WebSocket messages received and sent (UTF-8 length for text).",
        "websocket.server.connection.duration": "Duration of WebSocket connections, from the handshake to the close.",
    }
    assert metrics_for(meters, "other") is metrics_for(meters, "1.2.3")  # one set per meter provider
    meters.shutdown()


def test_apps_on_one_meter_provider_add_up_per_route() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    metrics = WebSocketMetrics(meters, "0")
    apps = [SessionStatistics(), SessionStatistics()]
    for statistics in apps:
        metrics.attach(statistics)
        session = open_session(statistics)
        session.on_message("sent", b"\x00\x01\x02")
    found = collect(reader)
    points = {name: list(metric.data.data_points) for name, (_, metric) in found.items()}
    assert [(dict(p.attributes), p.value) for p in points["websocket.server.active_connections"]] == [
        ({"http.route": "/r"}, 2)
    ]
    assert [(dict(p.attributes), p.value) for p in points["websocket.server.bytes"]] == [
        ({"http.route": "/r", "websocket.message.direction": "sent"}, 6)
    ]
    assert [(dict(p.attributes), p.value) for p in points["websocket.server.messages"]] == [
        ({"http.route": "/r", "websocket.message.direction": "sent", "websocket.message.type": "binary"}, 2)
    ]
    meters.shutdown()


class BrokenStatistics(SessionStatistics):
    def active_connections(self) -> dict[str | None, int]:
        raise RuntimeError("active")

    def messages(self) -> Any:
        raise RuntimeError("messages")

    def bytes(self) -> Any:
        raise RuntimeError("bytes")


def test_a_failing_observation_reports_once_with_its_traceback_and_observes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    statistics = BrokenStatistics()
    WebSocketMetrics(meters, "0").attach(statistics)
    observed = {"websocket.server.active_connections", "websocket.server.messages", "websocket.server.bytes"}
    for _ in range(2):  # the second collection logs nothing more
        data = reader.get_metrics_data()  # None: nothing at all was observed
        assert data is None or not observed & {
            metric.name for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
        }
    ours = [(r.args[0], r.exc_info is not None) for r in caplog.records if r.name == "litestar_ws_otel"]  # type: ignore[index]
    assert sorted(ours) == [
        ("could not observe the WebSocket byte counts", True),
        ("could not observe the WebSocket message counts", True),
        ("could not observe the open WebSocket connections", True),
    ]
    meters.shutdown()


def test_the_duration_view_gives_the_histogram_its_buckets() -> None:
    """For meters that take no bucket advice: the view sets the buckets on the provider ``instrument_app`` builds."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader], views=[duration_view()])
    meters.get_meter("m").create_histogram("websocket.server.connection.duration", unit="s").record(42.0)
    meters.get_meter("m").create_histogram("other.duration", unit="s").record(42.0)
    found = collect(reader)
    (point,) = found["websocket.server.connection.duration"][1].data.data_points
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    (other,) = found["other.duration"][1].data.data_points
    assert tuple(other.explicit_bounds) != DURATION_BUCKETS
    meters.shutdown()


class AdviceFreeMeter:
    """A meter of an API without ``explicit_bucket_boundaries_advisory`` (before 1.30, or another implementation)."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []

    def create_histogram(self, name: str, unit: str = "", description: str = "", **advice: Any) -> object:
        if advice:
            raise TypeError(f"unexpected keyword argument {next(iter(advice))!r}")
        self.created.append((name, {"unit": unit, "description": description}))
        return object()


def test_a_meter_without_bucket_advice_gets_the_histogram_without_it(caplog: pytest.LogCaptureFixture) -> None:
    meter = AdviceFreeMeter()
    with caplog.at_level(logging.DEBUG, logger="litestar_ws_otel"):
        _duration_histogram(meter)  # type: ignore[arg-type]
    assert meter.created == [
        (
            "websocket.server.connection.duration",
            {"unit": "s", "description": "Duration of WebSocket connections, from the handshake to the close."},
        )
    ]
    assert [(record.levelno, record.args[0]) for record in caplog.records] == [  # type: ignore[index]
        (
            logging.DEBUG,
            "this OpenTelemetry API takes no histogram bucket advice; durations use the meter provider's buckets",
        )
    ]
