"""The handle ``instrument_app`` returns, and how the panel and the toolbar find it from an app.

The handle is not kept in ``app.state``: that is the app's own, handlers read and copy it
(``ImmutableState`` deep-copies it, ``state.dict()`` serialises it). Litestar apps take neither
new attributes nor weak references, so the handle rides on what the app runs: the ASGI callable
``instrument_app`` installs carries it, and ``handle_of`` walks the app's handler chain to find
it. An app that is gone takes its handle, and its sessions, with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send
    from opentelemetry.sdk.trace import TracerProvider

    from litestar_ws_otel.config import WebSocketTelemetryConfig
    from litestar_ws_otel.processor import RecentSessionsProcessor
    from litestar_ws_otel.statistics import SessionStatistics

__all__ = ("Instrumentation", "InstrumentedApp", "handle_of")

_MAX_WRAPPERS = 32
"""How deep ``handle_of`` looks through middleware wrapped around the app's handler."""


@dataclass(frozen=True)
class Instrumentation:
    """What ``instrument_app`` set up: read sessions in code with ``handle.processor.sessions()``."""

    config: WebSocketTelemetryConfig
    processor: RecentSessionsProcessor
    """This app's recent sessions (each app has its own, even on a shared tracer provider)."""
    tracer_provider: TracerProvider
    capture_payloads: bool
    """The resolved setting: ``config.capture_payloads``, or ``app.debug`` when that is ``None``."""
    statistics: SessionStatistics
    """This app's connection, message and duration numbers: what the metrics and the panel report."""
    shutdown: Callable[[], Awaitable[None]]
    """Stop the live export and flush spans and metrics, bounded; runs once, at the app's shutdown."""


class InstrumentedApp:
    """The instrumented ASGI handler of an app, carrying the app's handle.

    Args:
        app: The instrumented handler (the WebSocket middleware around the app's own handler).
        handle: What ``instrument_app`` set up for this app.
    """

    __slots__ = ("app", "handle")

    def __init__(self, app: ASGIApp, handle: Instrumentation) -> None:
        self.app = app
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def handle_of(app: Litestar) -> Instrumentation | None:
    """The instrumentation of ``app``, or ``None`` when ``instrument_app`` has not run on it.

    Looks through the handler chain (``.app`` of each wrapper, as Litestar's own middleware
    keeps it), so it also finds the handle beneath Litestar's OpenTelemetry middleware.
    """
    node: object = app.asgi_handler
    for _ in range(_MAX_WRAPPERS):
        if isinstance(node, InstrumentedApp):
            return node.handle
        node = getattr(node, "app", None)
        if node is None:
            return None
    return None
