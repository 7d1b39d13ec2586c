"""Apps for the OTLP export tests.

Imported in-process for :func:`build_chat_app`; run as a script (``python -m tests.export.apps`` from the
project root) it serves the chat app instrumented the zero-config way, ``instrument_app(app)``, so the tracer
provider and exporter come from the ``OTEL_*`` variables of its environment. On stdout it prints
``READY <port>`` once uvicorn listens and ``ENDED <span name>`` after each span has been handed to
the provider's processors (the OTLP batch processor comes first, so the span is queued by then).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import uvicorn
from litestar import Litestar, WebSocket, websocket
from opentelemetry.sdk.trace import SpanProcessor

from litestar_ws_otel import instrument_app
from tests.export.subprocess_app import ReadyServer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

ENDED_PREFIX = "ENDED "
ERROR_ROOM = "boom"
ERROR_MESSAGE = "handler failed on purpose"


@websocket("/chat/{room:str}")
async def chat(socket: WebSocket[Any, Any, Any]) -> None:
    """Echo text as ``<room>: <text>`` and binary reversed; in room ``boom`` fail on the first message."""
    room = str(socket.path_params["room"])  # read here, not declared: no parameter-style deprecation warning
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if room == ERROR_ROOM:
            raise RuntimeError(ERROR_MESSAGE)
        text, data = message.get("text"), message.get("bytes")
        if isinstance(text, str):
            await socket.send_text(f"{room}: {text}")
        else:
            await socket.send_bytes(data[::-1] if isinstance(data, bytes) else b"")


def build_chat_app() -> Litestar:
    return Litestar(route_handlers=[chat])


class _EndedPrinter(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        print(f"{ENDED_PREFIX}{span.name}", flush=True)


def main() -> int:
    app = build_chat_app()
    handle = instrument_app(app)
    handle.tracer_provider.add_span_processor(_EndedPrinter())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="warning", lifespan="on")
    ReadyServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
