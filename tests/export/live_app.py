"""An app for the live-session export tests, run as ``python -m tests.export.live_app``.

It serves ``/stream``: each text message ``N`` is answered with ``N`` messages. Spans leave over OTLP
as the ``OTEL_*`` variables say; open sessions export their new messages every
``LIVE_EXPORT_INTERVAL`` seconds. Prints ``READY <port>`` once uvicorn listens.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from litestar import Litestar, WebSocket, websocket

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from tests.export.subprocess_app import ReadyServer

INTERVAL_VARIABLE = "LIVE_EXPORT_INTERVAL"


@websocket("/stream/{name:str}")
async def stream(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        for index in range(int(message.get("text") or 0)):
            await socket.send_text(f"item {index}")


def main() -> int:
    app = Litestar(route_handlers=[stream])
    interval = float(os.environ[INTERVAL_VARIABLE])
    instrument_app(app, WebSocketTelemetryConfig(export_interval_seconds=interval, max_messages_per_session=50))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="warning", lifespan="on")
    ReadyServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
