"""Where session spans go: the tracer provider, its OTLP exporter, and their limits.

The OpenTelemetry SDK does the exporting; this module only picks the provider, builds the SDK's
own exporter from the standard ``OTEL_*`` variables, and sizes batches for session spans.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from opentelemetry import trace
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ("batch_limits", "flush_on_shutdown", "otlp_exporter_from_env", "resolve_tracer_provider")

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
    if os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    if not (os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT)):
        return None
    variable = (
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
        if os.environ.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
        else OTEL_EXPORTER_OTLP_PROTOCOL
    )
    protocol = os.environ.get(variable, "grpc").strip().lower() or "grpc"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"{variable} must be 'grpc' or 'http/protobuf', got {protocol!r}")


def flush_on_shutdown(provider: TracerProvider) -> Callable[[], Awaitable[None]]:
    """A shutdown hook that exports the sessions the server closed while stopping.

    uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies by the signal and
    the SDK's ``atexit`` flush never runs; the lifespan shutdown is the last safe moment. The SDK's
    ``force_flush`` does not honour its timeout (each queued batch may take the exporter's full
    timeout), so the wait is bounded here and a stuck flush is abandoned in its thread.
    """

    async def flush() -> None:
        try:
            with anyio.move_on_after(SHUTDOWN_FLUSH_SECONDS):
                await anyio.to_thread.run_sync(
                    provider.force_flush, int(SHUTDOWN_FLUSH_SECONDS * 1000), abandon_on_cancel=True
                )
        except Exception as exc:
            report_once("could not flush spans at shutdown", exc)

    return flush
