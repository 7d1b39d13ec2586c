"""OpenTelemetry for WebSocket traffic in Litestar apps.

One connection is one span, its messages are span events, and a bounded in-memory store keeps
recent sessions for a local inspector panel.
"""

from __future__ import annotations

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.handle import Instrumentation
from litestar_ws_otel.instrument import WebSocketTelemetryPlugin, instrument_app
from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.version import VERSION as __version__

__all__ = (
    "Instrumentation",
    "RecentSessionsProcessor",
    "WebSocketTelemetryConfig",
    "WebSocketTelemetryPlugin",
    "__version__",
    "instrument_app",
)
