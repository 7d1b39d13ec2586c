"""An app that never calls ``instrument_app``: run under ``opentelemetry-instrument`` by the zero-code tests.

Run as ``opentelemetry-instrument python -m tests.export.zero_code_app`` from the project root. It prints
``READY <port>`` once uvicorn listens, ``INSTRUMENTED yes`` or ``INSTRUMENTED no`` once the start-up hooks
have run (its own hook is added after the app is built, so it runs after the instrumentor's), and
``ENDED <span name>`` after each span has been handed to the global provider's processors. Each session's
handler ends with a ``chat served`` span of its own: the session span's child when the session is traced,
a root otherwise, and in both cases proof that the app served the session and that export works.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import uvicorn
from litestar import Litestar, WebSocket, websocket
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from litestar_ws_otel.handle import handle_of
from tests.export.subprocess_app import ReadyServer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

INSTRUMENTED_PREFIX = "INSTRUMENTED "
ENDED_PREFIX = "ENDED "
SERVED_SPAN = "chat served"

_tracer = trace.get_tracer("tests.export.zero_code_app")


@websocket("/chat/{room:str}")
async def chat(socket: WebSocket[Any, Any, Any]) -> None:
    """Echo text as ``<room>: <text>`` until the client leaves, then record a ``chat served`` span."""
    room = str(socket.path_params["room"])
    await socket.accept()
    echoed = 0
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            break
        await socket.send_text(f"{room}: {message.get('text')}")
        echoed += 1
    with _tracer.start_as_current_span(SERVED_SPAN, attributes={"chat.room": room, "chat.echoed": echoed}):
        pass


def _report_instrumented(app: Litestar) -> None:
    print(f"{INSTRUMENTED_PREFIX}{'yes' if handle_of(app) is not None else 'no'}", flush=True)


class _EndedPrinter(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        print(f"{ENDED_PREFIX}{span.name}", flush=True)


def main() -> int:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # set up by opentelemetry-distro from the OTEL_* variables
        provider.add_span_processor(_EndedPrinter())
    app = Litestar(route_handlers=[chat])
    app.on_startup.append(_report_instrumented)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="warning", lifespan="on")
    ReadyServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
