"""A small echo chat instrumented with ``instrument_app``; no collector needed.

Run it, open http://127.0.0.1:8000 and send a few messages, then open the sessions panel at
http://127.0.0.1:8000/_ws_otel/ (served in debug mode, to this machine only), or
http://127.0.0.1:8000/sessions for the recorded sessions as JSON. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the same sessions are exported as spans.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from litestar import Litestar, WebSocket, get, websocket_listener
from litestar.exceptions import WebSocketDisconnect
from litestar.response import Response

from litestar_ws_otel import instrument_app

PAGE = """<!doctype html>
<meta charset="utf-8"><title>litestar-ws-otel quick start</title>
<h1>Room <span id="room"></span></h1>
<form id="f"><input id="m" autocomplete="off" autofocus><button>Send</button></form>
<ul id="log"></ul>
<p><a href="/_ws_otel/">Sessions panel</a> · <a href="/sessions">Recorded sessions (JSON)</a></p>
<script>
const room = new URLSearchParams(location.search).get("room") || "lobby";
document.getElementById("room").textContent = room;
const ws = new WebSocket(`ws://${location.host}/chat/${encodeURIComponent(room)}`);
const log = (text) => {
  const li = document.createElement("li");
  li.textContent = text;
  document.getElementById("log").append(li);
};
ws.onmessage = (event) => log(event.data);
ws.onclose = (event) => log(`closed ${event.code} ${event.reason}`);
document.getElementById("f").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("m");
  ws.send(input.value);
  input.value = "";
};
</script>
"""


@get("/", media_type="text/html", sync_to_thread=False)
def index() -> str:
    return PAGE


@get("/favicon.ico", status_code=204, include_in_schema=False, sync_to_thread=False)
def favicon() -> None:
    """No icon: answered so that a browser's request is not a 404, which debug mode logs with a traceback."""


@websocket_listener("/chat/{room:str}")
async def chat(data: str, room: str, socket: WebSocket[Any, Any, Any]) -> None:
    # A client may close right after sending, before its echo goes out: the server then raises an
    # OSError (uvicorn's ClientDisconnected), or Litestar a WebSocketDisconnect. Neither is an error.
    with contextlib.suppress(OSError, WebSocketDisconnect):
        await socket.send_text(f"[{room}] echo: {data}")


@get("/sessions", sync_to_thread=False)
def sessions() -> Response[list[dict[str, Any]]]:
    return Response(telemetry.processor.sessions())


app = Litestar(route_handlers=[index, favicon, chat, sessions], debug=True)
telemetry = instrument_app(app)

if __name__ == "__main__":
    import uvicorn

    port = int(os.environ.get("PORT", "8000"))
    print(f"chat: http://127.0.0.1:{port}/   sessions as JSON: http://127.0.0.1:{port}/sessions")
    print(f"sessions panel: http://127.0.0.1:{port}/_ws_otel/")
    uvicorn.run(app, host="127.0.0.1", port=port)
