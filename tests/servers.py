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

    def stop(self, timeout: float) -> None:
        """Stop now, as Ctrl+C does, without ``timeout_graceful_shutdown``; fail unless done within ``timeout``."""
        self.server.should_exit = True
        self.thread.join(timeout=timeout)
        if self.thread.is_alive():
            raise AssertionError(f"uvicorn did not stop within {timeout}s")


@contextlib.contextmanager
def run_server(app: Any, *, port: int = 0, ws: str = "websockets-sansio", **options: Any) -> Iterator[LiveServer]:
    """Serve ``app`` with uvicorn until the block ends; the server is always stopped.

    ``port=0`` picks a free port; pass a stopped server's port to restart on it, as ``--reload`` does.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=ws, log_level="warning", lifespan="on", **options)
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
