"""Drive an ASGI app's WebSocket routes with in-memory ``receive``/``send``: no sockets, no server.

The driver's own cost is the same for every variant, so the difference between a variant and the
bare app is the instrumentation alone. ``receive`` never suspends, so a connection runs straight
through on the event loop without scheduling noise.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from litestar.types import ASGIApp

__all__ = ("Connection", "lifespan", "run_echo", "run_push", "websocket_scope")

_CONNECT: dict[str, Any] = {"type": "websocket.connect"}
_DISCONNECT: dict[str, Any] = {"type": "websocket.disconnect", "code": 1000, "reason": ""}


def websocket_scope(path: str, query: bytes = b"") -> dict[str, Any]:
    """A WebSocket scope as uvicorn builds it for a local client; fresh per connection, since apps mutate it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"sec-websocket-version", b"13"),
            (b"user-agent", b"benchmarks/1.0"),
        ],
        "subprotocols": [],
        "state": {},
        "extensions": {"websocket.http.response": {}},
    }


async def _discard(message: Any) -> None:
    return None


async def run_echo(app: ASGIApp, message: dict[str, Any], count: int) -> None:
    """One connection that sends ``message`` ``count`` times (the app echoes each), then disconnects."""
    remaining = count
    connected = False

    async def receive() -> Any:
        nonlocal remaining, connected
        if not connected:
            connected = True
            return _CONNECT
        if remaining:
            remaining -= 1
            return message
        return _DISCONNECT

    await app(websocket_scope("/echo"), receive, _discard)  # type: ignore[arg-type]


async def run_push(app: ASGIApp, count: int, size: int = 100) -> None:
    """One connection to which the app pushes ``count`` messages of ``size`` bytes, then closes."""
    connected = False

    async def receive() -> Any:
        nonlocal connected
        if not connected:
            connected = True
            return _CONNECT
        return _DISCONNECT

    await app(websocket_scope("/push", f"n={count}&size={size}".encode()), receive, _discard)  # type: ignore[arg-type]


class Connection:
    """A connection to ``/echo`` that sends given messages, then stays open until ``close()``.

    ``disconnect_ns`` is when the app was handed the disconnect, so ``ended_ns - disconnect_ns``
    is the time the app (and its instrumentation) took to finish the connection.
    """

    def __init__(self, app: ASGIApp, messages: list[dict[str, Any]], clock: Callable[[], int]) -> None:
        self._app = app
        self._messages = messages
        self._clock = clock
        self._sent = 0
        self._connected = False
        self._release = asyncio.Event()
        self.idle = asyncio.Event()
        """Set once every message is consumed and the app waits for the next one."""
        self.disconnect_ns = 0
        self.ended_ns = 0
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> Any:
        if not self._connected:
            self._connected = True
            return _CONNECT
        if self._sent < len(self._messages):
            message = self._messages[self._sent]
            self._sent += 1
            return message
        self._messages = []
        self.idle.set()
        await self._release.wait()
        self.disconnect_ns = self._clock()
        return _DISCONNECT

    def start(self) -> None:
        """Run the connection as a task; it consumes its messages, then waits in ``receive``."""
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self._app(websocket_scope("/echo"), self._receive, _discard)  # type: ignore[arg-type]
        self.ended_ns = self._clock()

    def close(self) -> None:
        self._release.set()


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the app's start-up hooks before the block and its shut-down hooks after it."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    stopped = asyncio.Event()
    inbox.put_nowait({"type": "lifespan.startup"})

    async def send(message: Any) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    async def serve() -> None:
        scope: Any = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await app(scope, inbox.get, send)  # type: ignore[arg-type]

    task = asyncio.create_task(serve())
    await started.wait()
    try:
        yield
    finally:
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task
