"""The apps under test: one Litestar app with the same two WebSocket routes, instrumented per variant.

Every tracing variant gets its own SDK ``TracerProvider`` with no exporter and no sampler
override, so the numbers are the cost of instrumenting, not of exporting spans.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Litestar, WebSocket, websocket
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "PANEL_APP",
    "VARIANTS",
    "VARIANT_ENV",
    "BuiltApp",
    "Variant",
    "available_variants",
    "build_app",
    "build_panel_app",
    "build_served",
    "echo",
    "push",
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


def build_served(name: str) -> BuiltApp:
    """A variant by name, or ``PANEL_APP``: what ``benchmarks.server`` and ``app_from_env`` can serve."""
    return build_panel_app() if name == PANEL_APP else build_app(name)


def app_from_env() -> Litestar:
    """``uvicorn --factory benchmarks.apps:app_from_env`` with ``BENCH_VARIANT`` set: serve one variant by hand.

    ``BENCH_VARIANT=ours_debug_panel`` serves the panel benchmark's app (debug mode, panel at ``/_ws_otel/``).
    """
    return build_served(os.environ.get(VARIANT_ENV, "bare")).app
