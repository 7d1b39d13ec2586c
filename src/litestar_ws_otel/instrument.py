"""``instrument_app`` and the plugin form: put the middleware, hooks and panel on an app, once."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from litestar.plugins import InitPlugin
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel.config import TOOLBAR_PANEL_PATH, WebSocketTelemetryConfig
from litestar_ws_otel.dispatch import dispatcher_for
from litestar_ws_otel.handle import Instrumentation, InstrumentedApp, handle_of
from litestar_ws_otel.live_export import LiveExport
from litestar_ws_otel.metrics import metrics_for
from litestar_ws_otel.middleware import WebSocketTelemetryMiddleware, record_handler_exception
from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.provider import flush_on_shutdown, resolve_meter_provider, resolve_tracer_provider
from litestar_ws_otel.reporting import report_once
from litestar_ws_otel.session import PreviewPolicy
from litestar_ws_otel.statistics import SessionStatistics
from litestar_ws_otel.version import VERSION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin

__all__ = ("WebSocketTelemetryPlugin", "instrument_app")

_INSTRUMENTATION_NAME = "litestar_ws_otel"


def instrument_app(
    app: Litestar,
    config: WebSocketTelemetryConfig | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Instrumentation:
    """Trace every WebSocket connection of ``app``, an app that is already built, and count them in metrics.

    Calling it again on the same app returns the first result and adds nothing, so a connection
    never gets two spans.

    Args:
        app: The Litestar application.
        config: What to record; defaults suit development (payloads only in debug mode).
        tracer_provider: Where spans go. Defaults to the global SDK provider, or a new one set up
            from the ``OTEL_*`` environment variables.
        meter_provider: Where metrics go. Defaults to the global meter provider, or, when the tracer
            provider is set up from the environment, a new one exporting to the same OTLP endpoint.

    Returns:
        The handle holding the recent-sessions processor and the statistics.
    """
    existing = handle_of(app)
    if existing is not None:
        return existing
    if config is None:
        config = WebSocketTelemetryConfig()
    elif not isinstance(config, WebSocketTelemetryConfig):
        raise ValueError(f"config must be a WebSocketTelemetryConfig, got {type(config).__name__}")
    if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
        raise ValueError(
            f"tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, got {type(tracer_provider).__name__}"
        )
    if meter_provider is not None and not isinstance(meter_provider, MeterProvider):
        raise ValueError(
            f"meter_provider must be an opentelemetry.metrics.MeterProvider, got {type(meter_provider).__name__}"
        )
    capture_payloads = app.debug if config.capture_payloads is None else config.capture_payloads
    from_env = tracer_provider is None and not isinstance(trace.get_tracer_provider(), TracerProvider)
    provider = (
        tracer_provider
        if tracer_provider is not None
        else resolve_tracer_provider(config, capture_payloads=capture_payloads)
    )
    if config.enabled:
        _check_event_limit(provider, config)
    processor = RecentSessionsProcessor(
        max_sessions=config.max_sessions, session_ttl_seconds=config.session_ttl_seconds
    )
    tracer = provider.get_tracer(_INSTRUMENTATION_NAME, VERSION)
    interval = config.export_interval_seconds
    live_export = LiveExport(tracer, interval) if config.enabled and interval is not None else None
    meters = resolve_meter_provider(meter_provider, from_env=from_env) if config.enabled else None
    shutdown = _Shutdown(live_export, flush_on_shutdown(provider, meters) if config.enabled else None)
    handle = Instrumentation(config, processor, provider, capture_payloads, SessionStatistics(), shutdown)
    if config.enabled and meters is not None:
        _wire(app, handle, meters, tracer, live_export)
    # Disabled too: the next instrument_app on this app (or the zero-code hook) finds the handle.
    app.asgi_handler = InstrumentedApp(app.asgi_handler, handle)
    return handle


def _wire(
    app: Litestar,
    handle: Instrumentation,
    meter_provider: MeterProvider,
    tracer: trace.Tracer,
    live_export: LiveExport | None,
) -> None:
    """Put the middleware, hooks, metrics and panel on ``app``."""
    config = handle.config
    dispatcher_for(handle.tracer_provider).attach(handle.processor)
    try:
        metrics_for(meter_provider, VERSION).attach(handle.statistics)
    except Exception as exc:  # a broken meter provider costs the metrics, never the app
        report_once("could not create the WebSocket metrics; spans and the panel go on without them", exc)
    middleware = WebSocketTelemetryMiddleware(
        config=config,
        tracer=tracer,
        policy=_preview_policy(config, handle.capture_payloads),
        owner=handle.processor,
        statistics=handle.statistics,
        exclude=_exclude_pattern(config),
        live_export=live_export,
    )
    _install(app, middleware)
    app.after_exception.append(record_handler_exception)
    app.on_shutdown.append(handle.shutdown)
    panel_enabled = app.debug if config.panel_enabled is None else config.panel_enabled
    if panel_enabled:
        from litestar_ws_otel.panel.routes import register_panel  # only apps that serve the panel load it

        register_panel(app, handle)


class _Shutdown:
    """Stop the live export, then flush spans and metrics within the bound: once, whoever calls first.

    ``instrument_app`` adds it to the app's shutdown hooks; the plugin and the zero-code hook, which
    instrument at start-up after Litestar has collected those hooks, call it from a hook of theirs.
    """

    __slots__ = ("_done", "_flush", "_live_export")

    def __init__(self, live_export: LiveExport | None, flush: Callable[[], Awaitable[None]] | None) -> None:
        self._live_export = live_export
        self._flush = flush
        self._done = False

    async def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        if self._live_export is not None:
            self._live_export.stop()  # open sessions' last messages, before the flush
        if self._flush is not None:
            await self._flush()


class WebSocketTelemetryPlugin(InitPlugin):
    """The Litestar plugin form: ``Litestar(plugins=[WebSocketTelemetryPlugin()])``.

    The app instruments itself at start-up, so ``handle`` is set once the app has started.
    """

    __slots__ = ("_handle", "config", "meter_provider", "tracer_provider")

    def __init__(
        self,
        config: WebSocketTelemetryConfig | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.config = config or WebSocketTelemetryConfig()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._handle: Instrumentation | None = None
        super().__init__()

    @property
    def handle(self) -> Instrumentation | None:
        """The ``Instrumentation`` of the app, once it has started."""
        return self._handle

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(self._instrument)
        # Litestar collects the shutdown hooks before the start-up hooks run: this one is there in time.
        app_config.on_shutdown.append(self._shutdown)
        return app_config

    async def _shutdown(self) -> None:
        if self._handle is not None:
            await self._handle.shutdown()

    def _instrument(self, app: Litestar) -> None:
        self._handle = instrument_app(
            app, self.config, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )


def _install(app: Litestar, middleware: WebSocketTelemetryMiddleware) -> None:
    """Wrap the app's ASGI handler; below Litestar's OpenTelemetry middleware when that is present.

    Beneath it, our span is the child of its SERVER span instead of a second SERVER span. The plugin
    is found by name, as Litestar's ``app.py`` finds it, and its middleware by the class the plugin
    builds it from. Nothing is imported: Litestar keeps both in ``litestar.contrib.opentelemetry``
    before 2.22 and in ``litestar.plugins.opentelemetry`` from 2.22 on.
    """
    try:
        otel_plugin: OpenTelemetryPlugin = app.plugins.get("OpenTelemetryPlugin")
    except KeyError:
        app.asgi_handler = middleware(app.asgi_handler)
        return
    otel_middleware = otel_plugin.middleware  # a DefineMiddleware of the plugin's middleware class
    otel_class = otel_middleware.middleware
    outer = app.asgi_handler
    inner = getattr(outer, "app", None)
    if isinstance(otel_class, type) and isinstance(outer, otel_class) and inner is not None:
        app.asgi_handler = otel_middleware(app=middleware(inner))
    else:
        report_once("Litestar's OpenTelemetry middleware was not found where expected; WebSocket spans may be roots")
        app.asgi_handler = middleware(outer)


_LIFECYCLE_EVENTS = 3
"""Events of a session span besides its messages: accept, an exception, close."""


def _check_event_limit(provider: TracerProvider, config: WebSocketTelemetryConfig) -> None:
    """Refuse a provider that would silently drop the oldest events of a full session span.

    The SDK offers no public view of a provider's span limits, so its ``_span_limits`` is read.
    """
    max_events = getattr(getattr(provider, "_span_limits", None), "max_events", None)
    needed = config.max_messages_per_session + _LIFECYCLE_EVENTS
    if isinstance(max_events, int) and max_events < needed:
        raise ValueError(
            f"max_messages_per_session={config.max_messages_per_session} needs {needed} events per span "
            f"(the messages plus accept, exception and close), but the tracer provider keeps at most "
            f"{max_events} (SpanLimits.max_events, OTEL_SPAN_EVENT_COUNT_LIMIT): raise that limit or lower "
            "max_messages_per_session"
        )


def _preview_policy(config: WebSocketTelemetryConfig, capture_payloads: bool) -> PreviewPolicy:
    return PreviewPolicy(
        capture_payloads=capture_payloads,
        max_payload_bytes=config.max_payload_bytes,
        capture_binary_preview=config.capture_binary_preview,
        binary_preview_bytes=config.binary_preview_bytes,
        redact_payload=config.redact_payload,
        on_redact_error=lambda exc: report_once("redact_payload raised; previews it fails on are dropped", exc),
    )


def _exclude_pattern(config: WebSocketTelemetryConfig) -> re.Pattern[str]:
    """User patterns plus the panel's own paths, which are never instrumented."""
    own = [rf"^{re.escape(path)}(/|$)" for path in (config.panel_path, TOOLBAR_PANEL_PATH)]
    return re.compile("|".join([*own, *(f"(?:{pattern})" for pattern in config.exclude_paths)]))
