"""Fixtures for panel tests: instrumented apps on real uvicorn servers, a live-socket reader, WS handlers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar import Litestar
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import ClientConnection, connect

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.panel import routes as panel_routes
from tests.apps import echo
from tests.live_sockets import LiveSockets
from tests.servers import LiveServer, run_server

TIMEOUT = 10.0
"""Upper bound for any wait on the server; a passing test never waits this long."""


@dataclass
class Panel:
    """One instrumented app on a live server, with the URLs a test needs."""

    app: Litestar
    handle: Instrumentation
    server: LiveServer
    exporter: InMemorySpanExporter
    streams: LiveSockets
    prefix: str = "/_ws_otel"

    def url(self, path: str = "/", prefix: str | None = None) -> str:
        return self.server.http_url(f"{self.prefix if prefix is None else prefix}{path}")

    def ws_url(self, path: str) -> str:
        return self.server.url(path)

    def live_url(self, prefix: str | None = None) -> str:
        return self.server.url(f"{self.prefix if prefix is None else prefix}/api/live")


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> LiveSockets:
    """Counts the live-socket handlers that this test's panels run."""
    counter = LiveSockets()
    monkeypatch.setattr(panel_routes, "serve_live", counter.wrap(panel_routes.serve_live))
    return counter


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Generator[TracerProvider, None, None]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


@pytest.fixture
def start_panel(
    provider: TracerProvider, exporter: InMemorySpanExporter, streams: LiveSockets
) -> Generator[Callable[..., Panel], None, None]:
    """Factory: ``start_panel(config=None, *, handlers=(echo,), debug=True, **litestar_kwargs) -> Panel``."""
    with contextlib.ExitStack() as stack:

        def start(
            config: WebSocketTelemetryConfig | None = None,
            *,
            handlers: Sequence[Any] = (echo,),
            debug: bool = True,
            **litestar_kwargs: Any,
        ) -> Panel:
            app = Litestar(route_handlers=list(handlers), debug=debug, **litestar_kwargs)
            handle = instrument_app(app, config, tracer_provider=provider)
            server = stack.enter_context(run_server(app))
            return Panel(app=app, handle=handle, server=server, exporter=exporter, streams=streams)

        yield start


@dataclass
class Event:
    name: str
    data: Any
    received_at: float = field(default_factory=time.monotonic)


class EventReader:
    """Reads the panel's live socket as parsed events, with bounded waits."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[Event] = []

    async def next(self, timeout: float = TIMEOUT) -> Event:
        frame = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
        assert set(frame) == {"event", "data"}, frame
        event = Event(frame["event"], frame["data"])
        self.events.append(event)
        return event

    async def expect(
        self, name: str, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = TIMEOUT
    ) -> Event:
        """Read until an event called ``name`` whose data satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name!r} event within {timeout}s; got {[e.name for e in self.events]}")
            event = await self.next(remaining)
            if event.name == name and predicate(event.data):
                return event


@contextlib.asynccontextmanager
async def open_live(url: str) -> AsyncIterator[EventReader]:
    """Open the live socket (``ws://.../api/live``); leaving the block closes it, as a browser tab does."""
    async with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as socket:
        yield EventReader(socket)
