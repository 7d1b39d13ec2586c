"""Where session spans and metrics go: the providers, their OTLP exporters, and their limits.

The OpenTelemetry SDK does the exporting; this module only picks the provider, builds the SDK's
own exporter from the standard ``OTEL_*`` variables, and sizes batches for session spans.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from opentelemetry import metrics, trace
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.metrics import duration_view
from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = (
    "batch_limits",
    "flush_on_shutdown",
    "otlp_exporter_from_env",
    "otlp_metric_exporter_from_env",
    "resolve_meter_provider",
    "resolve_tracer_provider",
)

SHUTDOWN_FLUSH_SECONDS = 5.0
_OTLP_REQUEST_BUDGET = 2 * 1024 * 1024
"""Bytes an export request may reach: half of the 4 MiB that OTLP/gRPC receivers accept by default."""
_EXPORT_QUEUE_BUDGET = 32 * 1024 * 1024
"""Encoded bytes of spans that may wait for a down collector before the SDK drops new ones."""
_SPAN_BASE_BYTES = 16 * 1024
"""Encoded size of a session span without message events, with room for an exception's stack trace."""
_EVENT_BYTES = 256
"""Encoded size of one message event without its payload preview."""


def resolve_tracer_provider(
    config: WebSocketTelemetryConfig | None = None, *, capture_payloads: bool = False
) -> TracerProvider:
    """The global SDK provider if there is one; else a new global one from the ``OTEL_*`` variables."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create())
    exporter = otlp_exporter_from_env()
    if exporter is not None:
        batch, queue = batch_limits(config or WebSocketTelemetryConfig(), capture_payloads=capture_payloads)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=queue, max_export_batch_size=batch))
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        report_once(
            "the global tracer provider is not an SDK provider; WebSocket spans go to a separate provider. "
            "Pass tracer_provider= to choose",
            detail=type(current).__name__,
        )
    return provider


def batch_limits(config: WebSocketTelemetryConfig, *, capture_payloads: bool) -> tuple[int | None, int | None]:
    """Batch and queue sizes that fit the largest session span this config can produce.

    The SDK's defaults (512 spans a request, 2048 queued) assume small spans: 512 sessions with
    full rings of 1 KiB previews make a 60 MiB request, which every OTLP/gRPC receiver rejects
    (4 MiB by default), and the whole batch is lost. ``OTEL_BSP_*`` variables still win.

    Returns:
        ``(max_export_batch_size, max_queue_size)``; ``None`` leaves a value to the SDK.
    """
    preview = 0
    if capture_payloads:
        binary = 2 * config.binary_preview_bytes if config.capture_binary_preview else 0
        preview = max(config.max_payload_bytes, binary)
    largest_span = _SPAN_BASE_BYTES + config.max_messages_per_session * (_EVENT_BYTES + preview)
    batch = max(1, min(512, _OTLP_REQUEST_BUDGET // largest_span))
    queue = max(batch, min(2048, _EXPORT_QUEUE_BUDGET // largest_span))
    return (
        None if os.environ.get(OTEL_BSP_MAX_EXPORT_BATCH_SIZE) else batch,
        None if os.environ.get(OTEL_BSP_MAX_QUEUE_SIZE) else queue,
    )


def otlp_exporter_from_env() -> SpanExporter | None:
    """The SDK's OTLP exporter for the configured protocol, if an OTLP endpoint is configured.

    The exporters read endpoint, headers, timeout, TLS and compression themselves; only the
    protocol is ours to read, because they ignore ``OTEL_EXPORTER_OTLP_PROTOCOL``.
    """
    protocol = _otlp_protocol("TRACES", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    return None


def otlp_metric_exporter_from_env() -> MetricExporter | None:
    """The SDK's OTLP metric exporter, on the same endpoint and protocol rules as the spans'.

    ``OTEL_METRICS_EXPORTER=none`` turns it off; ``OTEL_METRIC_EXPORT_INTERVAL`` is read by the SDK's
    ``PeriodicExportingMetricReader``.
    """
    protocol = _otlp_protocol("METRICS", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        return HttpExporter()
    return None


def _otlp_protocol(signal: str, endpoint_variable: str, protocol_variable: str) -> str | None:
    """The OTLP protocol for ``signal`` (``TRACES``, ``METRICS``), or ``None`` when it is not exported.

    The exporters read endpoint, headers, timeout, TLS and compression themselves; only the
    protocol is ours to read, because they ignore ``OTEL_EXPORTER_OTLP_PROTOCOL``.
    """
    if os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return None
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return None
    if not (os.environ.get(endpoint_variable) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT)):
        return None
    variable = protocol_variable if os.environ.get(protocol_variable) else OTEL_EXPORTER_OTLP_PROTOCOL
    protocol = os.environ.get(variable, "grpc").strip().lower() or "grpc"
    if protocol not in ("grpc", "http/protobuf"):
        raise ValueError(f"{variable} must be 'grpc' or 'http/protobuf', got {protocol!r}")
    return protocol


def resolve_meter_provider(meter_provider: MeterProvider | None, *, from_env: bool) -> MeterProvider:
    """Where the metrics go: the provider passed, the global one, or (``from_env``) a new one from ``OTEL_*``.

    ``from_env`` is set when ``instrument_app`` built the tracer provider from the environment: the
    metrics then leave on the same OTLP endpoint. Otherwise the global provider is used as it is;
    while nobody has set one it records nothing, and it forwards to one set later.
    """
    if meter_provider is not None:
        return meter_provider
    current = metrics.get_meter_provider()
    if isinstance(current, SdkMeterProvider) or not from_env:
        return current
    exporter = otlp_metric_exporter_from_env()
    if exporter is None:
        return current
    provider = SdkMeterProvider(
        resource=Resource.create(), metric_readers=[PeriodicExportingMetricReader(exporter)], views=[duration_view()]
    )
    metrics.set_meter_provider(provider)
    return provider


async def _flush_in_thread(what: str, force_flush: Callable[[int], object]) -> None:
    try:
        await anyio.to_thread.run_sync(force_flush, int(SHUTDOWN_FLUSH_SECONDS * 1000), abandon_on_cancel=True)
    except Exception as exc:
        report_once(f"could not flush {what} at shutdown", exc)


def flush_on_shutdown(
    provider: TracerProvider, meter_provider: MeterProvider | None = None
) -> Callable[[], Awaitable[None]]:
    """A shutdown hook that exports the sessions the server closed while stopping, and the last metrics.

    uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies by the signal and
    the SDK's ``atexit`` flush never runs; the lifespan shutdown is the last safe moment. The SDK's
    ``force_flush`` does not honour its timeout (each queued batch may take the exporter's full
    timeout), so the wait is bounded here and a stuck flush is abandoned in its thread.
    """

    flushes: list[tuple[str, Callable[[int], object]]] = [("spans", provider.force_flush)]
    if isinstance(meter_provider, SdkMeterProvider):
        flushes.append(("metrics", meter_provider.force_flush))

    async def flush() -> None:
        with anyio.move_on_after(SHUTDOWN_FLUSH_SECONDS):  # one bound for both, which run side by side
            async with anyio.create_task_group() as group:
                for what, force_flush in flushes:
                    group.start_soon(_flush_in_thread, what, force_flush)

    return flush
