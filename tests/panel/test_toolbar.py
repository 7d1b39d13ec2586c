"""litestar-debug-toolbar: our toolbar panel, and our page under ``/_debug_toolbar/otel-ws/``."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from debug_toolbar.core.panels.websocket import WebSocketPanel
from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import MediaType, WebSocket, get, websocket
from litestar.exceptions import MissingDependencyException
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from litestar_ws_otel import WebSocketTelemetryConfig
from litestar_ws_otel.toolbar import WebSocketSessionsPanel
from tests.panel.conftest import TIMEOUT, Panel, echo, open_live
from tests.servers import wait_for

pytestmark = [
    pytest.mark.integration,
    # litestar-debug-toolbar 1.1.1's own routes use parameter styles that Litestar 2.25 deprecates
    # (matched by message: Litestar before 2.22 has no LitestarDeprecationWarning).
    pytest.mark.filterwarnings("ignore:.* declared using deprecated:DeprecationWarning"),
]

StartPanel = Callable[..., Panel]
TOOLBAR = "/_debug_toolbar/otel-ws"
HOSTILE_ROUTE = "/ws/<script>alert(1)</script>"


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def home() -> str:
    return "<html><body><h1>app</h1></body></html>"


@websocket(HOSTILE_ROUTE)
async def hostile(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text("hi")
    await socket.close()


def toolbar_app(start_panel: StartPanel, config: WebSocketTelemetryConfig | None = None, **toolbar: Any) -> Panel:
    toolbar_config = LitestarDebugToolbarConfig(extra_panels=[WebSocketSessionsPanel], **toolbar)
    return start_panel(config, handlers=(home, echo, hostile), plugins=[DebugToolbarPlugin(toolbar_config)])


def get_(url: str) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT)


def injected(html: str) -> bool:
    return 'id="debug-toolbar"' in html


def test_page_answers_under_the_toolbar_prefix_without_injection(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel)
    page = get_(panel.url("/", prefix=TOOLBAR))
    assert page.status_code == 200
    assert 'src="static/js/main.js"' in page.text
    assert not injected(page.text)
    assert "/_debug_toolbar/static/toolbar.js" not in page.text
    assert get_(panel.url("", prefix=TOOLBAR)).headers["location"] == "otel-ws/"
    assert get_(panel.url("/static/js/main.js", prefix=TOOLBAR)).status_code == 200
    assert get_(panel.url("/api/sessions", prefix=TOOLBAR)).json() == {"sessions": []}
    # Under panel_path the toolbar does inject itself: that is why the second prefix exists.
    assert injected(get_(panel.url("/")).text)


def tracked() -> dict[str, str]:
    """The toolbar's tracked WebSocket connections (class-wide, across apps): id -> path."""
    stats = WebSocketPanel.get_current_stats()
    return {c["connection_id"]: c["path"] for c in stats["active_connections"] + stats["closed_connections"]}


async def test_toolbar_prefix_requests_are_not_recorded_and_the_live_socket_is_not_tracked(
    start_panel: StartPanel,
) -> None:
    panel = toolbar_app(start_panel)
    assert get_(panel.url("/api/config", prefix=TOOLBAR)).status_code == 200
    async with open_live(panel.live_url(prefix=TOOLBAR)) as events:
        assert (await events.next()).name == "snapshot"
    wait_for(lambda: panel.streams.live == 0, timeout=TIMEOUT, what="the live socket to stop")
    history = get_(panel.server.http_url("/_debug_toolbar/api/requests")).json()
    assert [r for r in history if r["metadata"].get("path", "").startswith(TOOLBAR)] == []
    assert not any("otel-ws" in path or "_ws_otel" in path for path in tracked().values())


@pytest.mark.parametrize("tracking", [True, False])
async def test_toolbar_tracks_the_live_socket_under_panel_path_unless_tracking_is_off(
    start_panel: StartPanel, tracking: bool
) -> None:
    """docs/panel.md: at ``/_ws_otel/`` the toolbar's own WebSocket tracking sees the page's live socket."""
    panel = toolbar_app(start_panel, websocket_tracking_enabled=tracking)
    known = tracked()
    async with open_live(panel.live_url()) as events:
        assert (await events.next()).name == "snapshot"
    wait_for(lambda: panel.streams.live == 0, timeout=TIMEOUT, what="the live socket to stop")
    new = [path for connection_id, path in tracked().items() if connection_id not in known]
    assert new == (["/_ws_otel/api/live"] if tracking else [])


async def test_toolbar_prefix_keeps_the_access_guard(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel, WebSocketTelemetryConfig(panel_allow=("10.0.0.0/8",)))
    for path in ("/", "/static/js/main.js", "/api/sessions"):
        assert get_(panel.url(path, prefix=TOOLBAR)).status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        async with connect(panel.live_url(prefix=TOOLBAR), open_timeout=TIMEOUT):
            pass
    assert refused.value.response.status_code == 403
    assert panel.streams.opened == 0


async def test_toolbar_panel_shows_an_escaped_summary(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel)
    async with connect(panel.ws_url("/ws/%3Cscript%3Ealert(1)%3C/script%3E")) as ws:
        assert await ws.recv() == "hi"
    async with connect(panel.ws_url("/echo")) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        wait_for(lambda: len(panel.handle.processor.sessions()) == 2, timeout=TIMEOUT, what="two sessions")

        page = get_(panel.server.http_url("/"))
        assert injected(page.text)
        # The nav subtitle goes into the toolbar's HTML as is: ours is digits and a word.
        assert re.search(
            r'data-panel-id="WebSocketSessionsPanel">\s*<span class="panel-title">WS sessions</span>\s*'
            r'<span class="panel-subtitle">1 open</span>',
            page.text,
        )
        request_id = re.search(r'data-request-id="([0-9a-f-]+)"', page.text)
        assert request_id is not None

    stats = get_(panel.server.http_url(f"/_debug_toolbar/api/requests/{request_id[1]}")).json()
    summary = stats["panel_data"]["WebSocketSessionsPanel"]
    assert summary["panel"] == "/_debug_toolbar/otel-ws/"
    assert summary["open_sessions"] == 1
    sessions = summary["sessions"]
    assert [s["route"] for s in sessions] == ["/echo", HOSTILE_ROUTE]
    assert set(sessions[0]) == {
        "route", "state", "trace_id", "span_id", "messages_received", "messages_sent", "close_code",
    }  # fmt: skip
    assert sessions[1]["state"] == "closed"
    assert sessions[1]["close_code"] == 1000
    assert sessions[1]["messages_sent"] == 1

    detail = get_(panel.server.http_url(f"/_debug_toolbar/{request_id[1]}")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "<script>alert(1)" not in detail


async def test_toolbar_panel_keeps_to_ten_sessions(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel)
    for _ in range(12):
        async with connect(panel.ws_url("/echo")):
            pass
    wait_for(lambda: len(panel.handle.processor.sessions(state="closed")) == 12, timeout=TIMEOUT, what="12 sessions")
    page = get_(panel.server.http_url("/"))
    request_id = re.search(r'data-request-id="([0-9a-f-]+)"', page.text)
    assert request_id is not None
    stats = get_(panel.server.http_url(f"/_debug_toolbar/api/requests/{request_id[1]}")).json()
    summary = stats["panel_data"]["WebSocketSessionsPanel"]
    assert len(summary["sessions"]) == 10
    assert summary["kept_sessions"] == 12
    assert [s["span_id"] for s in summary["sessions"]] == [
        s["span_id"] for s in panel.handle.processor.summaries(limit=10)
    ]


async def test_toolbar_panel_without_our_panel_says_so(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel, WebSocketTelemetryConfig(panel_enabled=False))
    page = get_(panel.server.http_url("/"))
    assert 'class="panel-title">WS sessions</span>' in page.text
    request_id = re.search(r'data-request-id="([0-9a-f-]+)"', page.text)
    assert request_id is not None
    stats = get_(panel.server.http_url(f"/_debug_toolbar/api/requests/{request_id[1]}")).json()
    assert stats["panel_data"]["WebSocketSessionsPanel"]["panel"] is None


async def test_toolbar_websocket_tracking_can_be_turned_off(start_panel: StartPanel) -> None:
    panel = toolbar_app(start_panel, websocket_tracking_enabled=False, exclude_panels=["WebSocketPanel"])
    page = get_(panel.server.http_url("/")).text
    assert 'data-panel-id="WebSocketSessionsPanel"' in page
    assert 'data-panel-id="WebSocketPanel"' not in page
    before = WebSocketPanel.get_current_stats()
    known = {c["connection_id"] for c in before["active_connections"] + before["closed_connections"]}
    async with connect(panel.ws_url("/echo")) as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
    wait_for(lambda: panel.handle.processor.sessions(state="closed"), timeout=TIMEOUT, what="our session")
    after = WebSocketPanel.get_current_stats()
    assert {c["connection_id"] for c in after["active_connections"] + after["closed_connections"]} == known


def test_import_without_the_toolbar_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "debug_toolbar.core.panel", None)  # None in sys.modules: ImportError
    monkeypatch.delitem(sys.modules, "litestar_ws_otel.toolbar")
    with pytest.raises(MissingDependencyException, match=re.escape("pip install 'litestar-ws-otel[toolbar]'")):
        importlib.import_module("litestar_ws_otel.toolbar")
