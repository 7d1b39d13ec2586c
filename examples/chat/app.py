"""A small chat: rooms at ``/chat/{room}``, a JSON protocol, broadcast through Litestar's channels plugin.

Every WebSocket connection becomes one span named ``WS /chat/{room}``, its messages become span events,
and in debug mode the inspector panel at ``/_ws_otel/`` shows the recent sessions. Run it with::

    python3 examples/chat/app.py

then open http://127.0.0.1:8000 in two browser windows. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the
same spans are exported over OTLP as well (see ``collector-config/README.md`` for Jaeger).

Protocol, one JSON object per text message:

- client to server: ``{"type": "message", "text": "..."}``;
- server to every client in the room: ``{"type": "join" | "leave", "room", "user", "time"}`` and
  ``{"type": "message", "room", "user", "text", "time"}``;
- server to the sender only: ``{"type": "error", "error": "..."}`` for a message it cannot use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from litestar import Litestar, WebSocket, get, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.exceptions import WebSocketDisconnect
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app

PAGE = (Path(__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MAX_USER_LENGTH = 32
MAX_TEXT_LENGTH = 2000
POLICY_VIOLATION = 1008


@get("/", media_type="text/html", sync_to_thread=False)
def index() -> str:
    return PAGE


@get("/favicon.ico", status_code=204, include_in_schema=False, sync_to_thread=False)
def favicon() -> None:
    """No icon: answered so that a browser's request is not a 404, which debug mode logs with a traceback."""


def _error(text: str) -> str:
    return json.dumps({"type": "error", "error": text})


def _event(kind: str, room: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "room": room, "user": user, "time": time.time(), **extra}


async def _send(socket: WebSocket[Any, Any, Any], data: str | bytes) -> None:
    """Send to one client; a client that has already left is not an error.

    A broadcast can reach a socket whose client closed a moment ago. The ASGI server then raises an
    ``OSError`` (uvicorn's ``ClientDisconnected``), or Litestar a ``WebSocketDisconnect`` once the
    handler has seen the close. Either way the handler's next ``receive`` ends the session.
    """
    with contextlib.suppress(OSError, WebSocketDisconnect):
        await socket.send_data(data)


@websocket("/chat/{room:str}")
async def chat(socket: WebSocket[Any, Any, Any]) -> None:
    """Join ``room`` as ``?user=<name>``; everything said in the room is sent to everyone in it."""
    channels = socket.app.plugins.get(ChannelsPlugin)
    room = str(socket.path_params["room"])
    user = (socket.query_params.get("user") or "anonymous").strip()[:MAX_USER_LENGTH] or "anonymous"
    if not ROOM_NAME.fullmatch(room):
        # Refused before the handshake completes: the span records status 403 and no messages.
        await socket.close(code=POLICY_VIOLATION, reason="room names are 1-40 letters, digits, - or _")
        return
    channel = f"room:{room}"
    await socket.accept()
    try:
        async with (
            channels.start_subscription([channel]) as subscriber,
            subscriber.run_in_background(functools.partial(_send, socket)),
        ):
            channels.publish(_event("join", room, user), channel)
            while True:
                await _handle(socket, channels, channel, room, user, await socket.receive_text())
    except WebSocketDisconnect:
        pass  # the client left (or the server is shutting down): the span records the close code
    finally:
        channels.publish(_event("leave", room, user), channel)


async def _handle(
    socket: WebSocket[Any, Any, Any], channels: ChannelsPlugin, channel: str, room: str, user: str, raw: str
) -> None:
    try:
        message = json.loads(raw)
    except ValueError:
        await _send(socket, _error("messages are JSON objects"))
        return
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(message, dict) or message.get("type") != "message" or not isinstance(text, str):
        await _send(socket, _error('expected {"type": "message", "text": "..."}'))
        return
    if text.strip():
        channels.publish(_event("message", room, user, text=text[:MAX_TEXT_LENGTH]), channel)


def create_app(*, tracer_provider: TracerProvider | None = None) -> Litestar:
    """The chat app, instrumented. Without ``tracer_provider`` spans go where the ``OTEL_*`` variables say."""
    channels = ChannelsPlugin(
        backend=MemoryChannelsBackend(history=0),
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=100,  # a slow client loses old messages instead of growing a queue
        subscriber_backlog_strategy="dropleft",
    )
    app = Litestar(route_handlers=[index, favicon, chat], plugins=[channels], debug=True)
    # debug=True: payload previews are recorded and the panel is served at /_ws_otel/ (loopback only).
    # JAEGER_URL (e.g. http://localhost:16686) makes the panel link each session to its trace in Jaeger.
    config = WebSocketTelemetryConfig(jaeger_url=os.environ.get("JAEGER_URL") or None)
    instrument_app(app, config, tracer_provider=tracer_provider)
    return app


if __name__ == "__main__":
    import uvicorn

    port = int(os.environ.get("PORT", "8000"))
    print(f"chat: http://127.0.0.1:{port}/   sessions panel: http://127.0.0.1:{port}/_ws_otel/")
    uvicorn.run(create_app(), host="127.0.0.1", port=port)
