"""The plugin form: ``WebSocketTelemetryPlugin`` instruments the app when it starts.

Run it with ``python3 examples/plugin_app.py``, connect to ``ws://127.0.0.1:8000/echo`` with any WebSocket
client (``python3 -m websockets ws://127.0.0.1:8000/echo``), and open http://127.0.0.1:8000/sessions
to read the recorded sessions as JSON.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, get, websocket_listener
from litestar.datastructures import State
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel import WebSocketTelemetryConfig, WebSocketTelemetryPlugin


@websocket_listener("/echo")
async def echo(data: str) -> str:
    return data


@get("/sessions", sync_to_thread=False)
def sessions(state: State) -> list[dict[str, Any]]:
    """The recent sessions, newest first: the plugin's handle is set once the app has started."""
    plugin: WebSocketTelemetryPlugin = state.telemetry_plugin
    return plugin.handle.processor.sessions() if plugin.handle is not None else []


def create_app(*, tracer_provider: TracerProvider | None = None) -> Litestar:
    plugin = WebSocketTelemetryPlugin(WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=tracer_provider)
    return Litestar(route_handlers=[echo, sessions], plugins=[plugin], state=State({"telemetry_plugin": plugin}))


app = create_app()  # nothing is set up until the app starts: importing this module has no side effects

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
