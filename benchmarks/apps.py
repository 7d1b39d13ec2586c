"""The apps under test: one Litestar app with the same two WebSocket routes, instrumented per variant.

Every tracing variant gets its own SDK ``TracerProvider`` with no exporter and no sampler
override, so the numbers are the cost of instrumenting, not of exporting spans.

The long-session apps (``LONG_SESSION_APPS``) add a paced push route and an HTTP route that
reports what their provider's ``SpanCounter`` has counted; they are served by name, like the
panel app, and are not variants of the main run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Litestar, WebSocket, get, websocket
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.semconv import WEBSOCKET_EVENTS_DROPPED

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.handlers import HTTPRouteHandler
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = (
    "EXPORT_THREAD_CPU",
    "LONG_SESSION_APPS",
    "MAIN_THREAD_CPU",
    "PANEL_APP",
    "SPAN_COUNTS",
    "VARIANTS",
    "VARIANT_ENV",
    "BuiltApp",
    "SpanCounter",
    "Variant",
    "available_variants",
    "build_app",
    "build_panel_app",
    "build_served",
    "echo",
    "push",
    "push_rate",
)

VARIANT_ENV = "BENCH_VARIANT"
"""Environment variable that names the variant for ``uvicorn --factory benchmarks.apps:app_from_env``."""


@websocket("/echo")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    """Send every message back as it came, text as text and binary as binary, until the client leaves."""
    await socket.accept()
    while True:
        message: dict[str, Any] = await socket.receive()  # type: ignore[assignment]
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await socket.send_text(text)
        else:
            await socket.send_bytes(message.get("bytes") or b"")


@websocket("/push")
async def push(socket: WebSocket[Any, Any, Any], n: int = 1000, size: int = 100) -> None:
    """Send ``n`` text messages of ``size`` bytes as fast as the transport takes them, then close."""
    await socket.accept()
    payload = "x" * size
    for _ in range(n):
        await socket.send_text(payload)
    await socket.close()


@websocket("/push_rate")
async def push_rate(
    socket: WebSocket[Any, Any, Any], rate: float = 100.0, seconds: float = 60.0, size: int = 100
) -> None:
    """Send ``rate`` texts of ``size`` bytes per second for ``seconds``, then close.

    Paced against the start, not from one send to the next: message ``i`` is due ``i / rate``
    seconds in, and a late wake-up sends everything due at once, so every run sends exactly
    ``round(rate * seconds)`` messages and the session lasts ``seconds`` (or longer, if the client
    cannot keep up).
    """
    await socket.accept()
    payload = "x" * size
    total = round(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while sent < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while sent < due:
            await socket.send_text(payload)
            sent += 1
        if sent < total:
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    await asyncio.sleep(max(0.0, start + seconds - loop.time()))
    await socket.close()


SPAN_COUNTS = (
    "messages_spans",
    "messages_events",
    "messages_dropped",
    "session_spans",
    "session_events",
    "session_dropped",
)
"""What ``SpanCounter`` counts: ``{name} messages`` spans and the rest (session spans), their events
and the sum of their ``websocket.events.dropped``."""
EXPORT_THREAD_CPU = "export_thread_cpu_ns"
"""``/span_counts`` also reports the CPU time of the incremental export thread, under this key."""
MAIN_THREAD_CPU = "main_thread_cpu_ns"
"""And the CPU time of the main thread, where uvicorn runs the event loop and the app."""


class SpanCounter(SpanProcessor):
    """Counts the spans its provider ends: a stand-in exporter whose work per span is O(1).

    Incremental export makes ``{session name} messages`` spans; everything else our middleware
    ends is a session span. The counts are read over HTTP at ``/span_counts``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(SPAN_COUNTS, 0)

    def on_end(self, span: ReadableSpan) -> None:
        kind = "messages" if span.name.endswith(" messages") else "session"
        dropped = (span.attributes or {}).get(WEBSOCKET_EVENTS_DROPPED, 0)
        with self._lock:
            self._counts[f"{kind}_spans"] += 1
            self._counts[f"{kind}_events"] += len(span.events)
            self._counts[f"{kind}_dropped"] += int(dropped)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _export_thread_cpu_ns() -> int:
    """CPU time of the incremental export threads so far: the part of the cost that no noise of the
    event loop's own work blurs (``0`` before the first session starts one)."""
    from litestar_ws_otel.live_export import THREAD_NAME  # not at the top: compare_sources serves older packages

    return sum(_thread_cpu_ns(thread) for thread in threading.enumerate() if thread.name == THREAD_NAME)


def _thread_cpu_ns(thread: threading.Thread) -> int:
    if thread.ident is None or not thread.is_alive():
        return 0
    return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))


def _span_counts_route(counter: SpanCounter | None) -> HTTPRouteHandler:
    @get("/span_counts", sync_to_thread=False)
    def span_counts() -> dict[str, int]:
        """The spans the server's provider has ended so far; zeros for an app that is not traced."""
        counts = counter.snapshot() if counter is not None else dict.fromkeys(SPAN_COUNTS, 0)
        counts[EXPORT_THREAD_CPU] = _export_thread_cpu_ns()
        counts[MAIN_THREAD_CPU] = _thread_cpu_ns(threading.main_thread())
        return counts

    return span_counts


@dataclass(frozen=True)
class BuiltApp:
    """An app ready to serve, and our handle when the variant is ours (to read the recent-sessions store)."""

    app: Litestar
    handle: Instrumentation | None = None


@dataclass(frozen=True)
class Variant:
    """One way of instrumenting the app."""

    name: str
    label: str
    build: Callable[[], BuiltApp]
    ours: bool = False
    requires: str | None = None
    """A module the variant needs; without it the variant is skipped and the results say so."""

    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


def _litestar(**kwargs: Any) -> Litestar:
    return Litestar(route_handlers=[echo, push], **kwargs)


def _bare() -> BuiltApp:
    return BuiltApp(_litestar())


def _otel_plugin(exclude_spans: list[Any] | None) -> Callable[[], BuiltApp]:
    def build() -> BuiltApp:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

        config = OpenTelemetryConfig(tracer_provider=TracerProvider(), exclude_spans=exclude_spans)
        return BuiltApp(_litestar(plugins=[OpenTelemetryPlugin(config)]))

    return build


def _toolbar() -> BuiltApp:
    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig

    return BuiltApp(_litestar(plugins=[DebugToolbarPlugin(LitestarDebugToolbarConfig(enabled=True))]))


def _ours(capture_payloads: bool) -> Callable[[], BuiltApp]:
    def build() -> BuiltApp:
        app = _litestar()
        config = WebSocketTelemetryConfig(capture_payloads=capture_payloads)
        handle = instrument_app(app, config, tracer_provider=TracerProvider())
        return BuiltApp(app, handle)

    return build


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("bare", "bare app", _bare),
        Variant(
            "otel_plugin",
            "Litestar OpenTelemetryPlugin, defaults",
            _otel_plugin(None),
            requires="opentelemetry.instrumentation.asgi",
        ),
        Variant(
            "otel_plugin_exclude",
            'Litestar OpenTelemetryPlugin, exclude_spans=["receive","send"]',
            _otel_plugin(["receive", "send"]),
            requires="opentelemetry.instrumentation.asgi",
        ),
        Variant("toolbar", "litestar-debug-toolbar WebSocket panel", _toolbar, requires="debug_toolbar"),
        Variant("ours_prod", "litestar-ws-otel, production defaults (capture off)", _ours(False), ours=True),
        Variant("ours_debug", "litestar-ws-otel, debug (capture on, 1 KB previews)", _ours(True), ours=True),
    )
}
"""All variants, in the order they run in each round; ``bare`` first, as every ratio's reference."""


def available_variants() -> list[Variant]:
    return [variant for variant in VARIANTS.values() if variant.available()]


def build_app(name: str) -> BuiltApp:
    """A fresh app of the named variant, with its own tracer provider."""
    try:
        variant = VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
    return variant.build()


PANEL_APP = "ours_debug_panel"
"""Not a variant (it is not compared with the others): the app the panel API is measured on over HTTP."""


def build_panel_app() -> BuiltApp:
    """``ours_debug`` in a ``debug=True`` app, so the panel is served under ``/_ws_otel``."""
    app = _litestar(debug=True)
    handle = instrument_app(app, WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=TracerProvider())
    return BuiltApp(app, handle)


def _long_session_app(config: dict[str, Any] | None) -> Callable[[], BuiltApp]:
    """``/echo``, ``/push``, ``/push_rate`` and ``/span_counts``; traced with ``config`` unless it is ``None``.

    The config is made when the app is, so that ``compare_sources`` can serve an older package
    without the fields these apps set.
    """

    def build() -> BuiltApp:
        if config is None:
            return BuiltApp(_litestar_with(_span_counts_route(None)))
        counter = SpanCounter()
        provider = TracerProvider()
        provider.add_span_processor(counter)
        app = _litestar_with(_span_counts_route(counter))
        return BuiltApp(app, instrument_app(app, WebSocketTelemetryConfig(**config), tracer_provider=provider))

    return build


def _litestar_with(span_counts: HTTPRouteHandler) -> Litestar:
    return Litestar(route_handlers=[echo, push, push_rate, span_counts])


LONG_SESSION_APPS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("long_bare", "bare app", _long_session_app(None)),
        Variant(
            "long_ours_interval_1s",
            "litestar-ws-otel, debug, export_interval_seconds=1.0",
            _long_session_app({"capture_payloads": True, "export_interval_seconds": 1.0}),
            ours=True,
        ),
        Variant(
            "long_ours_at_close",
            "litestar-ws-otel, debug, export_interval_seconds=None",
            _long_session_app({"capture_payloads": True, "export_interval_seconds": None}),
            ours=True,
        ),
    )
}
"""The long-session benchmark's apps: bare, and ``ours_debug``'s config with and without incremental export."""


def build_served(name: str) -> BuiltApp:
    """A variant, ``PANEL_APP`` or a long-session app by name: what ``benchmarks.server`` and ``app_from_env`` serve."""
    if name == PANEL_APP:
        return build_panel_app()
    if name in LONG_SESSION_APPS:
        return LONG_SESSION_APPS[name].build()
    return build_app(name)


def app_from_env() -> Litestar:
    """``uvicorn --factory benchmarks.apps:app_from_env`` with ``BENCH_VARIANT`` set: serve one variant by hand.

    ``BENCH_VARIANT=ours_debug_panel`` serves the panel benchmark's app (debug mode, panel at ``/_ws_otel/``).
    """
    return build_served(os.environ.get(VARIANT_ENV, "bare")).app
