"""A litestar-debug-toolbar panel: a short summary of recent WebSocket sessions and a link to ours.

Install with ``pip install 'litestar-ws-otel[toolbar]'`` and register it through the toolbar's
config::

    from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
    from litestar_ws_otel.toolbar import WebSocketSessionsPanel

    config = LitestarDebugToolbarConfig(extra_panels=[WebSocketSessionsPanel])
    app = Litestar(route_handlers=[...], plugins=[DebugToolbarPlugin(config)], debug=True)
    instrument_app(app)

The summary is redacted by construction: route templates, states, ids and counters, never paths,
headers or payloads, since the toolbar has its own access rules and history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from litestar.exceptions import MissingDependencyException

try:
    from debug_toolbar.core.panel import Panel
    from debug_toolbar.litestar.plugin import DebugToolbarPlugin
except ImportError as exc:
    _error = MissingDependencyException("debug_toolbar", "litestar-debug-toolbar", "toolbar")
    _error.detail = (
        "Package 'litestar-debug-toolbar' is not installed but required by litestar_ws_otel.toolbar. "
        "Install it with `pip install 'litestar-ws-otel[toolbar]'`"
    )
    raise _error from exc

from litestar_ws_otel.config import TOOLBAR_PANEL_PATH
from litestar_ws_otel.handle import handle_of

if TYPE_CHECKING:
    from debug_toolbar.core.context import RequestContext
    from debug_toolbar.core.toolbar import DebugToolbar
    from litestar import Litestar

    from litestar_ws_otel.processor import RecentSessionsProcessor

__all__ = ("SUMMARY_SESSIONS", "WebSocketSessionsPanel", "bind_toolbar_panels")

SUMMARY_SESSIONS = 10
"""Sessions listed in the toolbar; the full list is one click away on our page."""
_SUMMARY_KEYS = ("route", "state", "trace_id", "span_id", "messages_received", "messages_sent", "close_code")


class WebSocketSessionsPanel(Panel):
    """Open session count in the toolbar's nav; the ten newest sessions and our page's URL as content.

    The toolbar renders panel data itself, escaping every string (in its page and its in-page
    script), so the values here are plain data; pre-escaping them would show ``&lt;`` literally.
    The toolbar builds panels before ``instrument_app`` runs and gives them no app, so
    ``register_panel`` binds each instance to its app, and the panel looks up the app's handle on
    every request.
    """

    panel_id: ClassVar[str] = "WebSocketSessionsPanel"
    title: ClassVar[str] = "WebSocket sessions"
    template: ClassVar[str] = ""
    has_content: ClassVar[bool] = True
    nav_title: ClassVar[str] = "WS sessions"

    __slots__ = ("_app",)

    def __init__(self, toolbar: DebugToolbar) -> None:
        super().__init__(toolbar)
        self._app: Litestar | None = None

    def bind(self, app: Litestar) -> None:
        """Read sessions from ``app``'s instrumentation from now on."""
        self._app = app

    def _processor(self) -> RecentSessionsProcessor | None:
        handle = handle_of(self._app) if self._app is not None else None
        return handle.processor if handle is not None else None

    async def generate_stats(self, context: RequestContext) -> dict[str, Any]:
        processor = self._processor()
        if processor is None:
            return {"panel": None, "note": "litestar-ws-otel's panel is not enabled on this app"}
        summaries = processor.summaries()
        return {
            "panel": f"{TOOLBAR_PANEL_PATH}/",
            "open_sessions": sum(1 for summary in summaries if summary["state"] == "open"),
            "kept_sessions": len(summaries),
            "sessions": [{key: summary[key] for key in _SUMMARY_KEYS} for summary in summaries[:SUMMARY_SESSIONS]],
        }

    def get_nav_subtitle(self) -> str:
        """``"3 open"``: digits only, since the toolbar puts the subtitle into its HTML unescaped."""
        processor = self._processor()
        if processor is None:
            return ""
        return f"{len(processor.summaries(state='open'))} open"


def bind_toolbar_panels(app: Litestar) -> None:
    """Point every ``WebSocketSessionsPanel`` of ``app``'s toolbar plugins at ``app``."""
    for plugin in app.plugins:
        if isinstance(plugin, DebugToolbarPlugin) and plugin.toolbar is not None:
            for panel in plugin.toolbar.panels:
                if isinstance(panel, WebSocketSessionsPanel):
                    panel.bind(app)
