"""Whether span and metric export is failing, as the panel shows it: read from the SDK's own log records.

The batch processors and OTLP exporters report failures only by logging them. A logger filter that
notes the last such record (and always lets it through) tells the panel without adding work to any
message, and without a handler of ours: a handler would stop Python's last-resort printing of
those records in apps that configure no logging, changing what the app logs.
"""

from __future__ import annotations

import logging
import threading

__all__ = ("EXPORT_LOGGERS", "ExportHealth", "export_health")

EXPORT_LOGGERS = (
    "opentelemetry.sdk._shared_internal",  # the batch span processor (SDK 1.33 and later)
    "opentelemetry.sdk.trace.export",  # the batch span processor (earlier SDKs)
    "opentelemetry.sdk.metrics._internal.export",  # the periodic metric reader
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers that report export failures, each a module's own (filters see only their logger's records)."""
_MAX_MESSAGE = 500


class ExportHealth(logging.Filter):
    """Notes the newest warning or error of the export loggers; never drops a record."""

    def __init__(self) -> None:
        super().__init__("litestar_ws_otel.export_health")
        self._lock = threading.Lock()
        self._last: tuple[float, str, str] | None = None
        self._count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            try:
                message = record.getMessage()
            except Exception:  # a record whose arguments do not format still counts
                message = str(record.msg)
            with self._lock:
                self._last = (record.created, record.name, message[:_MAX_MESSAGE])
                self._count += 1
        return True

    def watch(self) -> None:
        """Add this filter to every export logger, once."""
        for name in EXPORT_LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)

    def status(self) -> dict[str, object]:
        """``{"error", "logger", "at", "problems"}``: the newest problem (``None`` if none) and how many."""
        with self._lock:
            last, count = self._last, self._count
        if last is None:
            return {"error": None, "logger": None, "at": None, "problems": 0}
        created, name, message = last
        return {"error": message, "logger": name, "at": created, "problems": count}


export_health = ExportHealth()
"""One per process: export runs in the SDK's threads, for every app at once."""
