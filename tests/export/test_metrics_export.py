"""Metrics over OTLP to the real rotel collector: names, units and attributes, while sessions are open and after."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from websockets.asyncio.client import connect

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from tests.apps import room_echo
from tests.servers import run_server

if TYPE_CHECKING:
    from .collector import RotelCollector
    from .receiver import OtlpGrpcReceiver, PointDict

pytestmark = pytest.mark.export

WAIT_TIMEOUT = 30.0
ROUTE = "/echo/{room}"
EXPORT_MILLIS = 200


def meter_provider_to(collector: RotelCollector, protocol: str) -> MeterProvider:
    exporter = (
        GrpcMetricExporter(endpoint=collector.grpc_endpoint, insecure=True, timeout=10)
        if protocol == "grpc"
        else HttpMetricExporter(endpoint=f"{collector.http_endpoint}/v1/metrics", timeout=10)
    )
    return MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_MILLIS)])


def latest(points: list[PointDict], name: str) -> list[PointDict]:
    """The newest point of ``name`` per attribute set (cumulative temporality: the newest is the total)."""
    newest: dict[tuple[Any, ...], PointDict] = {}
    for point in points:
        if point["name"] == name:
            newest[tuple(sorted(point["attributes"].items()))] = point
    return list(newest.values())


def value_of(points: list[PointDict], name: str, **attributes: Any) -> Any:
    matching = [p for p in latest(points, name) if p["attributes"] == {"http.route": ROUTE, **attributes}]
    if not matching:
        return None
    (point,) = matching
    return point.get("value", point.get("count"))


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_metrics_arrive_while_sessions_are_open_and_after_they_close(
    protocol: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver
) -> None:
    meters = meter_provider_to(rotel_collector, protocol)
    tracers = TracerProvider()
    app = Litestar(route_handlers=[room_echo])
    instrument_app(app, WebSocketTelemetryConfig(), tracer_provider=tracers, meter_provider=meters)

    def open_phase(points: list[PointDict]) -> bool:
        return (
            value_of(points, "websocket.server.active_connections") == 2
            and value_of(points, "websocket.server.messages", **{
                "websocket.message.direction": "received", "websocket.message.type": "text"}) == 3
            and value_of(points, "websocket.server.bytes", **{"websocket.message.direction": "sent"}) == 8
        )  # fmt: skip

    def closed_phase(points: list[PointDict]) -> bool:
        return (
            value_of(points, "websocket.server.active_connections") == 0
            and value_of(points, "websocket.server.connection.duration", **{"websocket.close.code": 1000}) == 2
        )

    async def scenario(server_url: str) -> list[PointDict]:
        async with connect(f"{server_url}/echo/a") as first, connect(f"{server_url}/echo/b") as second:
            for ws, texts in ((first, ("one", "two")), (second, ("é",))):
                for text in texts:
                    await ws.send(text)
                    assert await ws.recv() == text
            # Both sessions are still open: the counters must already be there.
            return await asyncio.to_thread(otlp_receiver.wait_for_metrics, open_phase, WAIT_TIMEOUT)

    try:
        with run_server(app) as server:
            while_open = asyncio.run(asyncio.wait_for(scenario(f"ws://127.0.0.1:{server.port}"), WAIT_TIMEOUT * 2))
            after = otlp_receiver.wait_for_metrics(closed_phase, WAIT_TIMEOUT)
    finally:
        meters.shutdown()
        tracers.shutdown()
    units = {point["name"]: (point["unit"], point["kind"], point["scope"]) for point in while_open}
    assert units["websocket.server.active_connections"] == ("{connection}", "sum", "litestar_ws_otel")
    assert units["websocket.server.messages"] == ("{message}", "sum", "litestar_ws_otel")
    assert units["websocket.server.bytes"] == ("By", "sum", "litestar_ws_otel")
    assert value_of(while_open, "websocket.server.bytes", **{"websocket.message.direction": "received"}) == 3 + 3 + 2
    (duration,) = latest(after, "websocket.server.connection.duration")
    assert (duration["unit"], duration["kind"]) == ("s", "histogram")
    assert duration["attributes"] == {"http.route": ROUTE, "websocket.close.code": 1000}
    assert duration["count"] == 2
    assert max(duration["bounds"]) >= 3600  # hours, not the HTTP buckets' seconds
