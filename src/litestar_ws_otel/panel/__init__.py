"""The inspector panel: a page, a JSON API and a live socket over the recent-sessions store."""

from __future__ import annotations

from litestar_ws_otel.panel.routes import PANEL_STATE_KEY, PanelState, register_panel

__all__ = ("PANEL_STATE_KEY", "PanelState", "register_panel")
