"""Real servers for tests: uvicorn on 127.0.0.1, port 0, in a thread; ready and stopped on conditions."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")

STARTUP_TIMEOUT = 20.0


def wait_for(predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


@dataclass
class LiveServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def run_server(app: Any, *, ws: str = "websockets-sansio", **options: Any) -> Iterator[LiveServer]:
    """Serve ``app`` with uvicorn until the block ends; the server is always stopped."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws=ws, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=STARTUP_TIMEOUT, what="uvicorn to start")
        if not server.started:
            raise RuntimeError("uvicorn exited before it started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(server=server, thread=thread, port=port)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        if thread.is_alive():  # pragma: no cover - a stuck server is a test failure
            server.force_exit = True
            thread.join(timeout=STARTUP_TIMEOUT)
            raise RuntimeError("uvicorn did not stop")
