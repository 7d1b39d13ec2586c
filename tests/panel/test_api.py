"""The panel's HTTP API over a real uvicorn server, with real ``websockets`` sessions and ``httpx``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as connect_sync

import litestar_ws_otel.panel
from litestar_ws_otel import WebSocketTelemetryConfig, WebSocketTelemetryPlugin, instrument_app
from tests.litestar_compat import OpenTelemetryConfig, OpenTelemetryPlugin
from tests.live_sockets import LiveSockets
from tests.panel.conftest import TIMEOUT, Panel, echo, open_live
from tests.servers import run_server, wait_for

pytestmark = pytest.mark.integration

StartPanel = Callable[..., Panel]
LIVE_DELAY = 1.0
"""Deltas must reach the browser within a second of the action."""


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


async def echo_session(panel: Panel, *messages: str) -> None:
    """One session that sends ``messages``, reads each echo, and closes normally."""
    async with connect(panel.ws_url("/echo")) as ws:
        for message in messages:
            await ws.send(message)
            assert await ws.recv() == message


def wait_closed_sessions(panel: Panel, count: int) -> list[dict[str, Any]]:
    wait_for(
        lambda: len(panel.handle.processor.sessions(state="closed")) >= count,
        timeout=TIMEOUT,
        what=f"{count} closed session(s)",
    )
    return panel.handle.processor.sessions(state="closed")


# --- page and assets ------------------------------------------------------------------------------


PANEL_JS = Path(litestar_ws_otel.panel.__file__).parent / "static" / "js"
PANEL_MODULES = sorted(path.name for path in PANEL_JS.glob("*.js"))


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_index_is_html_with_strict_csp(start_panel: StartPanel) -> None:
    panel = start_panel()
    response = get(panel.url("/"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="static/js/main.js"></script>' in response.text
    assert_security_headers(response)


def test_prefix_without_slash_redirects_so_relative_urls_resolve(start_panel: StartPanel) -> None:
    panel = start_panel()
    response = get(panel.url(""))
    assert response.status_code == 307
    assert response.headers["location"] == "_ws_otel/"
    followed = get(panel.url(""), follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url) == panel.url("/")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.html", "text/html"),
        ("panel.css", "text/css"),
        ("js/main.js", "javascript"),
        # Every module the entry imports: module scripts need a JavaScript MIME type (nosniff is on).
        *[(f"js/{name}", "javascript") for name in PANEL_MODULES if name != "main.js"],
    ],
)
def test_static_assets_are_served_with_security_headers(start_panel: StartPanel, name: str, content_type: str) -> None:
    panel = start_panel()
    response = get(panel.url(f"/static/{name}"))
    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert_security_headers(response)


def test_custom_panel_path(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(panel_path="/debug/ws"))
    assert get(panel.url("/", prefix="/debug/ws")).status_code == 200
    assert get(panel.url("", prefix="/debug/ws")).headers["location"] == "ws/"
    assert get(panel.url("/api/config", prefix="/debug/ws")).status_code == 200
    assert get(panel.url("/api/config", prefix="/_ws_otel")).status_code == 404


# --- JSON API -------------------------------------------------------------------------------------


async def test_api_stats_counts_what_the_app_saw(start_panel: StartPanel) -> None:
    panel = start_panel()
    assert get(panel.url("/api/stats")).json()["connections_total"] == 0
    await echo_session(panel, "héllo")
    wait_closed_sessions(panel, 1)
    stats = get(panel.url("/api/stats")).json()
    assert stats == {
        "connections_total": 1,
        "connections_open": 0,
        "messages_received": 1,
        "messages_sent": 1,
        "bytes_received": 6,
        "bytes_sent": 6,
        "duration_seconds": {"p50": stats["duration_seconds"]["max"], "p95": stats["duration_seconds"]["max"],
                             "max": stats["duration_seconds"]["max"]},
        "close_codes": {"1000": 1},
        "errors": 0,
    }  # fmt: skip
    assert 0 < stats["duration_seconds"]["max"] < 10
    assert stats == panel.handle.statistics.snapshot().as_json()


def test_api_config_reports_the_resolved_settings(start_panel: StartPanel) -> None:
    config = WebSocketTelemetryConfig(jaeger_url="http://localhost:16686", max_sessions=7, max_payload_bytes=64)
    panel = start_panel(config)
    response = get(panel.url("/api/config"))
    assert response.status_code == 200
    assert response.json() == {
        "jaeger_url": "http://localhost:16686",
        "capture_payloads": True,  # None follows app.debug
        "max_sessions": 7,
        "max_messages_per_session": 100,
        "max_payload_bytes": 64,
    }
    assert_security_headers(response)


async def test_sessions_newest_first_with_state_filter_limit_and_summary(start_panel: StartPanel) -> None:
    panel = start_panel()
    await echo_session(panel, "first")
    await echo_session(panel, "second", "2")
    wait_closed_sessions(panel, 2)
    async with connect(panel.ws_url("/echo")) as ws:
        await ws.send("open")
        assert await ws.recv() == "open"

        every = get(panel.url("/api/sessions")).json()["sessions"]
        assert [s["state"] for s in every] == ["open", "closed", "closed"]
        assert every == panel.handle.processor.sessions()
        assert [m["payload"] for m in every[1]["messages"]] == ["second", "second", "2", "2"]

        opened = get(panel.url("/api/sessions"), params={"state": "open"}).json()["sessions"]
        assert [s["span_id"] for s in opened] == [every[0]["span_id"]]
        closed = get(panel.url("/api/sessions"), params={"state": "closed"}).json()["sessions"]
        assert [s["span_id"] for s in closed] == [every[1]["span_id"], every[2]["span_id"]]
        limited = get(panel.url("/api/sessions"), params={"state": "closed", "limit": 1}).json()["sessions"]
        assert [s["span_id"] for s in limited] == [every[1]["span_id"]]

        summaries = get(panel.url("/api/sessions"), params={"summary": 1}).json()["sessions"]
        assert summaries == [{k: v for k, v in s.items() if k != "messages"} for s in every]


@pytest.mark.parametrize("query", [{"state": "opened"}, {"limit": 0}, {"limit": -1}, {"limit": "x"}, {"summary": "2"}])
def test_bad_query_is_400(start_panel: StartPanel, query: dict[str, Any]) -> None:
    panel = start_panel()
    assert get(panel.url("/api/sessions"), params=query).status_code == 400


async def test_one_session_with_all_kept_messages_and_404(start_panel: StartPanel) -> None:
    panel = start_panel()
    await echo_session(panel, "a", "b")
    [closed] = wait_closed_sessions(panel, 1)
    response = get(panel.url(f"/api/sessions/{closed['span_id']}"))
    assert response.status_code == 200
    document = response.json()
    assert document == closed
    assert [(m["direction"], m["id"], m["payload"]) for m in document["messages"]] == [
        ("received", 1, "a"),
        ("sent", 1, "a"),
        ("received", 2, "b"),
        ("sent", 2, "b"),
    ]
    for unknown in ("0123456789abcdef", "not-a-span-id", "<script>"):
        missing = get(panel.url(f"/api/sessions/{unknown}"))
        assert missing.status_code == 404
        assert_security_headers(missing)
        assert "<script>" not in missing.text
        assert get(panel.url(f"/api/sessions/{unknown}/export")).status_code == 404


async def test_export_is_a_json_download(start_panel: StartPanel) -> None:
    panel = start_panel()
    await echo_session(panel, "x")
    [closed] = wait_closed_sessions(panel, 1)
    span_id = closed["span_id"]
    response = get(panel.url(f"/api/sessions/{span_id}/export"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == f'attachment; filename="ws-session-{span_id}.json"'
    assert response.json() == closed


# --- when the panel is on, and who may open it ----------------------------------------------------


def test_panel_off_without_debug(start_panel: StartPanel) -> None:
    panel = start_panel(debug=False)
    for path in ("/", "/api/sessions", "/api/config", "/api/live", "/static/js/main.js"):
        assert get(panel.url(path)).status_code == 404
    with pytest.raises(InvalidStatus):
        connect_sync(panel.live_url(), open_timeout=TIMEOUT)
    assert not [route.path for route in panel.app.routes if route.path.startswith("/_ws_otel")]


def test_panel_on_with_panel_enabled_even_without_debug(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(panel_enabled=True), debug=False)
    assert get(panel.url("/")).status_code == 200
    config = get(panel.url("/api/config")).json()
    assert config["capture_payloads"] is False  # payloads still follow app.debug


def test_panel_off_with_panel_enabled_false_even_in_debug(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(panel_enabled=False))
    assert get(panel.url("/")).status_code == 404


def test_panel_off_when_instrumentation_disabled(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(enabled=False, panel_enabled=True))
    assert get(panel.url("/")).status_code == 404


EVERY_ROUTE = (
    "",
    "/",
    "/static/index.html",
    "/static/js/main.js",
    "/static/panel.css",
    "/api/config",
    "/api/stats",
    "/api/sessions",
    "/api/sessions?summary=1",
)


async def assert_refused_everywhere(panel: Panel) -> None:
    await echo_session(panel, "secret-payload")
    [closed] = wait_closed_sessions(panel, 1)
    paths = (*EVERY_ROUTE, f"/api/sessions/{closed['span_id']}", f"/api/sessions/{closed['span_id']}/export")
    for path in paths:
        response = get(panel.url(path))
        assert response.status_code == 403, path
        assert_security_headers(response)
        assert "secret-payload" not in response.text
        assert closed["span_id"] not in response.text
    assert get(panel.url("/api/live")).status_code == 405  # the live socket answers no plain GET
    with pytest.raises(InvalidStatus) as refused:
        async with connect(panel.live_url(), open_timeout=TIMEOUT):
            pass
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b""
    assert panel.streams.opened == 0


async def test_client_outside_panel_allow_gets_403_and_no_data(start_panel: StartPanel) -> None:
    # 127.0.0.1 is not in 10.0.0.0/8: the test client stands in for a remote one.
    await assert_refused_everywhere(start_panel(WebSocketTelemetryConfig(panel_allow=("10.0.0.0/8",))))


async def test_panel_allow_predicate_that_raises_denies(start_panel: StartPanel) -> None:
    def broken(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        raise RuntimeError("boom")

    await assert_refused_everywhere(start_panel(WebSocketTelemetryConfig(panel_allow=broken)))


def test_panel_allow_predicate_sees_the_connection(start_panel: StartPanel) -> None:
    def token_header(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        return connection.headers.get("x-panel-token") == "letmein"

    panel = start_panel(WebSocketTelemetryConfig(panel_allow=token_header))
    assert get(panel.url("/api/config")).status_code == 403
    assert get(panel.url("/api/config"), headers={"x-panel-token": "letmein"}).status_code == 200


async def test_panel_paths_produce_no_spans(start_panel: StartPanel) -> None:
    panel = start_panel()
    for path in EVERY_ROUTE:
        assert get(panel.url(path), follow_redirects=True).status_code == 200, path
    async with open_live(panel.live_url()) as events:
        assert (await events.next()).name == "snapshot"
    wait_for(lambda: panel.streams.live == 0, timeout=TIMEOUT, what="the live socket to stop")
    panel.handle.tracer_provider.force_flush()
    assert panel.exporter.get_finished_spans() == ()
    assert panel.handle.processor.sessions() == []


@pytest.mark.parametrize("exclude", [None, ["/_ws_otel"]])
def test_litestar_otel_plugin_traces_panel_requests_unless_excluded(provider: Any, exporter: Any, exclude: Any) -> None:
    """docs/panel.md: Litestar's OpenTelemetryPlugin traces HTTP and WebSockets, so users exclude the panel there."""
    otel = OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider, exclude=exclude))
    app = Litestar(route_handlers=[echo], plugins=[otel], debug=True)
    instrument_app(app, tracer_provider=provider)
    with run_server(app) as server:
        assert get(server.http_url("/_ws_otel/api/sessions")).status_code == 200
        with connect_sync(server.url("/_ws_otel/api/live"), open_timeout=TIMEOUT) as live:
            assert json.loads(live.recv(timeout=TIMEOUT))["event"] == "snapshot"
    names = {span.name for span in exporter.get_finished_spans()}
    assert ("GET /_ws_otel/api/sessions" in names) is (exclude is None)
    assert ("/_ws_otel/api/live" in names) is (exclude is None)


def test_plugin_form_serves_the_panel(provider: Any) -> None:
    plugin = WebSocketTelemetryPlugin(tracer_provider=provider)
    app = Litestar(route_handlers=[echo], plugins=[plugin], debug=True)
    with run_server(app) as server:
        assert get(server.http_url("/_ws_otel/api/sessions")).json() == {"sessions": []}


def test_instrumenting_twice_registers_the_panel_once(provider: Any) -> None:
    app = Litestar(route_handlers=[echo], debug=True)
    instrument_app(app, tracer_provider=provider)
    instrument_app(app, tracer_provider=provider)
    with run_server(app) as server:
        assert get(server.http_url("/_ws_otel/api/config")).status_code == 200


# --- live socket ----------------------------------------------------------------------------------


async def test_live_snapshot_then_deltas_within_a_second(start_panel: StartPanel) -> None:
    panel = start_panel()
    await echo_session(panel, "before")
    [before] = wait_closed_sessions(panel, 1)
    async with open_live(panel.live_url()) as events:
        snapshot = await events.next()
        assert snapshot.name == "snapshot"
        assert snapshot.data == {"sessions": [{k: v for k, v in before.items() if k != "messages"}]}

        async with connect(panel.ws_url("/echo")) as ws:
            connected = time.monotonic()
            opened = await events.expect("session_opened")
            assert opened.received_at - connected < LIVE_DELAY
            span_id = opened.data["span_id"]
            assert opened.data["state"] == "open"
            assert "messages" not in opened.data

            await ws.send("hello")
            assert await ws.recv() == "hello"
            sent = time.monotonic()
            delta = await events.expect("messages", lambda d: d["span_id"] == span_id and d["messages_sent"] == 1)
            assert delta.received_at - sent < LIVE_DELAY
            received = [m for e in events.events if e.name == "messages" for m in e.data["messages"]]
            assert [(m["direction"], m["id"], m["payload"]) for m in received] == [
                ("received", 1, "hello"),
                ("sent", 1, "hello"),
            ]
            assert delta.data["bytes_received"] == 5
            assert delta.data["bytes_sent"] == 5

            await ws.send("close-me")
            await ws.wait_closed()
        closed_at = time.monotonic()
        closed = await events.expect("session_closed", lambda d: d["span_id"] == span_id)
        assert closed.received_at - closed_at < LIVE_DELAY
        assert closed.data["state"] == "closed"
        assert closed.data["close_code"] == 4001
        assert closed.data["close_reason"] == "asked"
        assert closed.data["ended_at"] is not None
        assert closed.data["status"] == "unset"
        # This session's events: the app-wide "stats" and "health" come beside them.
        names = [e.name for e in events.events if e.name not in ("snapshot", "stats", "health")]
        assert names[0] == "session_opened"
        assert names[-1] == "session_closed"


async def test_live_socket_sends_the_statistics_when_they_change(start_panel: StartPanel) -> None:
    panel = start_panel()
    async with open_live(panel.live_url()) as events:
        assert (await events.next()).name == "snapshot"
        first = await events.expect("stats")
        assert (first.data["connections_total"], first.data["connections_open"]) == (0, 0)
        async with connect(panel.ws_url("/echo")) as ws:
            await events.expect("stats", lambda d: d["connections_open"] == 1)
            await ws.send("hi")
            assert await ws.recv() == "hi"
            stats = await events.expect("stats", lambda d: d["messages_sent"] == 1)
            assert stats.data["bytes_received"] == 2
        closed = await events.expect("stats", lambda d: d["connections_open"] == 0)
        assert closed.data["close_codes"] == {"1000": 1}
        assert closed.data == get(panel.url("/api/stats")).json()


async def test_live_socket_reports_evicted_sessions(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(max_sessions=1))
    await echo_session(panel, "old")
    [old] = wait_closed_sessions(panel, 1)
    async with open_live(panel.live_url()) as events:
        assert [s["span_id"] for s in (await events.next()).data["sessions"]] == [old["span_id"]]
        await echo_session(panel, "new")
        evicted = await events.expect("session_evicted")
        assert evicted.data == {"span_id": old["span_id"]}


async def test_client_disconnect_stops_the_live_socket(start_panel: StartPanel) -> None:
    panel = start_panel()
    async with open_live(panel.live_url()) as first, open_live(panel.live_url()) as second:
        assert (await first.next()).name == "snapshot"
        assert (await second.next()).name == "snapshot"
        assert panel.streams.live == 2
    wait_for(lambda: panel.streams.live == 0, timeout=TIMEOUT, what="both live sockets to stop")
    assert panel.streams.opened == 2


SHUTDOWN_SECONDS = 5.0
"""A server with an open panel must stop well within this; uvicorn waits for HTTP streams forever."""


def test_server_stops_promptly_with_a_live_socket_open(provider: Any, streams: LiveSockets) -> None:
    """No ``timeout_graceful_shutdown``: uvicorn tells the live socket to go (1012) and the handler returns."""
    app = Litestar(route_handlers=[echo], debug=True)
    instrument_app(app, tracer_provider=provider)
    with run_server(app) as server, connect_sync(server.url("/_ws_otel/api/live"), open_timeout=TIMEOUT) as live:
        assert json.loads(live.recv(timeout=TIMEOUT))["event"] == "snapshot"
        assert streams.live == 1
        server.stop(timeout=SHUTDOWN_SECONDS)
        assert streams.live == 0
        assert close_code(live) == 1012  # service restart


def close_code(live: ClientConnection) -> int | None:
    """Read past what is still buffered until the close; the code the server closed with."""
    try:
        while True:
            live.recv(timeout=TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
