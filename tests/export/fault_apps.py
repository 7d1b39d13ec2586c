"""Apps for the fault tests (``test_faults.py``) and the collector config test.

Imported in-process for :func:`build_echo_app` and :func:`largest_session_span`. Run as a script
(``python -m tests.export.fault_apps`` from the project root) it serves the echo app instrumented the zero-config way,
``instrument_app(app)``, so the tracer provider and the OTLP exporter come from the ``OTEL_*`` variables of
its environment, exactly as a user's app would. It prints ``READY <port>`` on stdout once uvicorn listens,
and ``EXITING`` if ``uvicorn.Server.run`` returns; on SIGTERM it does not: after its graceful shutdown uvicorn
re-raises the signal, so the process dies by it and no ``atexit`` hook (the SDK's final flush) runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import uvicorn
from litestar import Litestar

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from tests.apps import room_echo as echo
from tests.export.subprocess_app import ReadyServer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

EXITING_LINE = "EXITING"


def build_echo_app() -> Litestar:
    return Litestar(route_handlers=[echo])


def largest_session_span() -> ReadableSpan:
    """The biggest session span the defaults allow: payload capture on and a full ring of maximum-size previews.

    Twice as many 4 KiB messages (two-byte characters) as the ring holds, so every kept record carries a
    preview cut to ``max_payload_bytes``.
    """
    from litestar.testing import TestClient
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = build_echo_app()
    config = WebSocketTelemetryConfig(capture_payloads=True)
    instrument_app(app, config, tracer_provider=provider)
    message = "é" * 2048
    with TestClient(app) as client, client.websocket_connect("/echo/big?lang=fi") as ws:
        for _ in range(config.max_messages_per_session):
            ws.send_text(message)
            ws.receive_text()
    provider.shutdown()
    [span] = exporter.get_finished_spans()
    return span


def main() -> int:
    app = build_echo_app()
    instrument_app(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    try:
        ReadyServer(config).run()
    finally:
        print(EXITING_LINE, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
