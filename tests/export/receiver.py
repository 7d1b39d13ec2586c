"""In-test OTLP/gRPC trace and metrics receiver: the "backend" a real collector exports to.

It stores every span it receives (flattened to plain dicts, see :func:`span_to_dict`) and every metric
data point (:func:`metric_points`), and lets tests wait for them on a condition variable instead of
sleeping.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SpanDict = dict[str, Any]
PointDict = dict[str, Any]
"""One metric data point: ``name``, ``unit``, ``kind``, ``attributes``, and ``value`` or ``count``/``bounds``."""


def metric_points(request: metrics_service_pb2.ExportMetricsServiceRequest) -> list[PointDict]:
    """Every data point of an export request, flattened with its metric's name, unit and kind."""
    points: list[PointDict] = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                base = {"name": metric.name, "unit": metric.unit, "kind": kind, "scope": scope_metrics.scope.name}
                for point in getattr(metric, kind).data_points:
                    entry = {**base, "attributes": attributes_to_dict(point.attributes)}
                    if kind == "histogram":
                        entry.update(count=point.count, bounds=list(point.explicit_bounds), sum=point.sum)
                    else:
                        entry["value"] = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                    points.append(entry)
    return points


def any_value_to_python(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` to the equivalent Python value (arrays become lists)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, which)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


def _enum_name(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def span_to_dict(
    span: trace_pb2.Span,
    resource_attributes: dict[str, Any] | None = None,
    scope_name: str = "",
) -> SpanDict:
    """Flatten a proto span to JSON-friendly data: ids as hex, kind/status as short names."""
    return {
        "name": span.name,
        "kind": _enum_name(trace_pb2.Span.SpanKind.Name(span.kind), "SPAN_KIND_"),
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "attributes": attributes_to_dict(span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "events": [
            {
                "name": event.name,
                "time_unix_nano": event.time_unix_nano,
                "attributes": attributes_to_dict(event.attributes),
            }
            for event in span.events
        ],
        "dropped_events_count": span.dropped_events_count,
        "status": {
            "code": _enum_name(trace_pb2.Status.StatusCode.Name(span.status.code), "STATUS_CODE_"),
            "message": span.status.message,
        },
        "resource_attributes": dict(resource_attributes or {}),
        "scope_name": scope_name,
    }


def request_to_span_dicts(request: trace_service_pb2.ExportTraceServiceRequest) -> list[SpanDict]:
    spans: list[SpanDict] = []
    for resource_spans in request.resource_spans:
        resource_attributes = attributes_to_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            spans.extend(span_to_dict(span, resource_attributes, scope_spans.scope.name) for span in scope_spans.spans)
    return spans


class SpanStore:
    """Thread-safe store of received spans with condition-based waiting."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._spans: list[SpanDict] = []
        self._requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._points: list[PointDict] = []

    def add_request(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = request_to_span_dicts(request)
        with self._cond:
            self._requests.append(request)
            self._spans.extend(spans)
            self._cond.notify_all()

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        points = metric_points(request)
        with self._cond:
            self._points.extend(points)
            self._cond.notify_all()

    def metric_points(self) -> list[PointDict]:
        """Every data point received so far, oldest export first."""
        with self._cond:
            return list(self._points)

    def wait_for_metrics(self, done: Callable[[list[PointDict]], bool], timeout: float = 30.0) -> list[PointDict]:
        """Wait until ``done`` holds for the points received so far; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self._points):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted({point["name"] for point in self._points})
                    raise TimeoutError(f"metrics not as expected after {timeout:.1f}s; received {names}")
                self._cond.wait(remaining)
            return list(self._points)

    @property
    def request_count(self) -> int:
        with self._cond:
            return len(self._requests)

    def requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        """The raw export requests, for assertions the flattened dicts cannot express."""
        with self._cond:
            return list(self._requests)

    def spans(self) -> list[SpanDict]:
        with self._cond:
            return list(self._spans)

    def clear(self) -> None:
        with self._cond:
            self._spans.clear()
            self._requests.clear()

    def wait_for_spans(
        self,
        predicate: Callable[[SpanDict], bool],
        timeout: float = 30.0,
        count: int = 1,
    ) -> list[SpanDict]:
        """Wait until at least ``count`` received spans match ``predicate``; return all matches.

        Raises ``TimeoutError`` (listing what did arrive) if that does not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matches = [span for span in self._spans if predicate(span)]
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [span["name"] for span in self._spans]
                    raise TimeoutError(
                        f"{len(matches)}/{count} matching spans after {timeout:.1f}s; "
                        f"{len(self._requests)} export requests, {len(names)} spans received: {names}"
                    )
                self._cond.wait(remaining)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: SpanStore) -> None:
        self._store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._store.add_request(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store: SpanStore) -> None:
        self._store = store

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._store.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpGrpcReceiver(SpanStore):
    """OTLP/gRPC ``TraceService`` and ``MetricsService`` server on ``127.0.0.1`` with an OS-assigned port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-receiver"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self), self._server)
        self.port = self._server.add_insecure_port(f"{host}:0")
        if self.port == 0:
            raise RuntimeError(f"could not bind the OTLP receiver on {host}")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait(timeout=grace + 5.0)

    def __enter__(self) -> OtlpGrpcReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
