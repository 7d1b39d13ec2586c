"""The harness itself: plain OpenTelemetry SDK -> rotel (OTLP/gRPC or OTLP/HTTP) -> in-test receiver."""

from __future__ import annotations

import json
import threading
import uuid
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan

    from .collector import RotelCollector
    from .receiver import OtlpGrpcReceiver

pytestmark = pytest.mark.export

WAIT_TIMEOUT = 30.0
EVENT_TIME_NS = 1_700_000_000_123_456_789  # fixed, clearly not "now": proves the timestamp is kept


class RecordingExporter(SpanExporter):
    """Delegates to a real exporter and remembers each export result, so a failed export is visible."""

    def __init__(self, delegate: SpanExporter) -> None:
        self.delegate = delegate
        self.results: list[SpanExportResult] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.delegate.export(spans)
        with self._lock:
            self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_span_round_trips_through_rotel(
    protocol: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver
) -> None:
    assert rotel_collector.receiver is otlp_receiver
    run_id = uuid.uuid4().hex
    exporter = RecordingExporter(rotel_collector.exporter(protocol))
    provider = TracerProvider(resource=Resource.create({"service.name": "harness", "harness.protocol": protocol}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        tracer = provider.get_tracer("harness.test")
        with tracer.start_as_current_span("WS /harness/{room}", kind=SpanKind.SERVER) as span:
            span.set_attributes(
                {
                    "harness.run_id": run_id,
                    "harness.str": "hello",
                    "harness.int": 42,
                    "harness.bool": True,
                    "harness.str_array": ["a", "b", "c"],
                }
            )
            span.add_event(
                "websocket.receive",
                attributes={"websocket.message.id": 1, "websocket.message.type": "text"},
                timestamp=EVENT_TIME_NS,
            )
            span.set_status(Status(StatusCode.ERROR, "boom"))
        assert provider.force_flush(timeout_millis=int(WAIT_TIMEOUT * 1000))
    finally:
        provider.shutdown()
    assert exporter.results == [SpanExportResult.SUCCESS]

    [received] = otlp_receiver.wait_for_spans(
        lambda s: s["attributes"].get("harness.run_id") == run_id, timeout=WAIT_TIMEOUT
    )
    print(json.dumps(received, indent=2, sort_keys=True))

    assert received["name"] == "WS /harness/{room}"
    assert received["kind"] == "SERVER"
    assert received["parent_span_id"] is None
    assert len(received["trace_id"]) == 32
    assert len(received["span_id"]) == 16
    assert received["attributes"] == {
        "harness.run_id": run_id,
        "harness.str": "hello",
        "harness.int": 42,
        "harness.bool": True,
        "harness.str_array": ["a", "b", "c"],
    }
    assert received["events"] == [
        {
            "name": "websocket.receive",
            "time_unix_nano": EVENT_TIME_NS,
            "attributes": {"websocket.message.id": 1, "websocket.message.type": "text"},
        }
    ]
    assert received["status"] == {"code": "ERROR", "message": "boom"}
    assert received["scope_name"] == "harness.test"
    assert received["resource_attributes"]["service.name"] == "harness"
    assert received["resource_attributes"]["harness.protocol"] == protocol
