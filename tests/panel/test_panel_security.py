"""Attacks on the panel over a real uvicorn server: foreign Host, foreign Origin, cross-site fetches,
credential-shaped names in the handshake, and the log a flood of refused requests leaves."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import WebSocket, websocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from litestar_ws_otel import WebSocketTelemetryConfig
from tests.panel.conftest import TIMEOUT, Panel, echo, open_live
from tests.servers import wait_for

pytestmark = pytest.mark.integration

StartPanel = Callable[..., Panel]
PREFIXES = ("/_ws_otel", "/_debug_toolbar/otel-ws")
SECRET = "secret-payload-4f1d"
ROUTES = (
    "/",
    "/static/index.html",
    "/static/js/main.js",
    "/api/config",
    "/api/stats",
    "/api/sessions",
    "/api/sessions?summary=1",
)
CROSS_SITE = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "empty"}


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


async def secret_session(panel: Panel) -> dict[str, Any]:
    async with connect(panel.ws_url("/echo")) as ws:
        await ws.send(SECRET)
        assert await ws.recv() == SECRET
    wait_for(lambda: panel.handle.processor.sessions(state="closed"), timeout=TIMEOUT, what="a closed session")
    return panel.handle.processor.sessions(state="closed")[0]


def assert_no_data(response: httpx.Response, session: dict[str, Any]) -> None:
    assert response.status_code == 403, response.request.url
    assert SECRET not in response.text
    assert session["span_id"] not in response.text
    assert response.headers["cache-control"] == "no-store"


async def assert_handshake_refused(url: str, **kwargs: Any) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=TIMEOUT, **kwargs):
            pass
    assert refused.value.response.status_code == 403
    assert refused.value.response.body == b""


# --- Host: DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_foreign_host_gets_no_data_on_page_api_static_and_live_socket(
    start_panel: StartPanel, prefix: str
) -> None:
    panel = start_panel()
    session = await secret_session(panel)
    paths = (*ROUTES, f"/api/sessions/{session['span_id']}", f"/api/sessions/{session['span_id']}/export")
    for path in paths:
        assert_no_data(get(panel.url(path, prefix), headers={"Host": f"evil.example:{panel.server.port}"}), session)
        assert get(panel.url(path, prefix)).status_code == 200, path  # the same request under the real host
    # The live socket, with the URL (and so the Host header) a rebound page would use.
    with socket.create_connection(("127.0.0.1", panel.server.port), timeout=TIMEOUT) as sock:
        await assert_handshake_refused(f"ws://evil.example:{panel.server.port}{prefix}/api/live", sock=sock)
    assert panel.streams.opened == 0


async def test_allowed_host_is_served(start_panel: StartPanel) -> None:
    panel = start_panel(WebSocketTelemetryConfig(panel_allowed_hosts=("devbox.internal",)))
    host = {"Host": f"devbox.internal:{panel.server.port}"}
    assert get(panel.url("/api/config"), headers=host).status_code == 200
    assert get(panel.url("/api/config"), headers={"Host": "evil.example"}).status_code == 403
    with socket.create_connection(("127.0.0.1", panel.server.port), timeout=TIMEOUT) as sock:
        url = f"ws://devbox.internal:{panel.server.port}/_ws_otel/api/live"
        async with connect(url, sock=sock, open_timeout=TIMEOUT) as ws:
            assert '"snapshot"' in str(await ws.recv())


def test_duplicate_host_header_is_refused(start_panel: StartPanel) -> None:
    panel = start_panel()
    with socket.create_connection(("127.0.0.1", panel.server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            f"GET /_ws_otel/api/config HTTP/1.1\r\nHost: 127.0.0.1:{panel.server.port}\r\nHost: evil.example\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 400 Bad Request")
    assert b"jaeger_url" not in answer


# --- Fetch Metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_cross_site_gets_get_no_data(start_panel: StartPanel, prefix: str, site: str) -> None:
    panel = start_panel()
    session = await secret_session(panel)
    for path in (*ROUTES, f"/api/sessions/{session['span_id']}/export"):
        assert_no_data(get(panel.url(path, prefix), headers={**CROSS_SITE, "sec-fetch-site": site}), session)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_top_level_navigation_to_the_page_is_allowed(start_panel: StartPanel, prefix: str) -> None:
    panel = start_panel()
    navigate = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    page = get(panel.url("/", prefix), headers=navigate)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    assert get(panel.url("/api/sessions", prefix), headers=navigate).status_code == 403  # only the page
    same_origin = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}
    assert get(panel.url("/api/sessions", prefix), headers=same_origin).status_code == 200


# --- Origin on the live socket ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    "origin", ["null", "http://127.0.0.1:1", "http://localhost:{port}", "https://127.0.0.1:{port}"]
)
async def test_foreign_or_null_origin_cannot_open_the_live_socket(
    start_panel: StartPanel, prefix: str, origin: str
) -> None:
    panel = start_panel()
    await secret_session(panel)
    await assert_handshake_refused(panel.live_url(prefix), origin=Origin(origin.format(port=panel.server.port)))
    assert panel.streams.opened == 0


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_own_and_allowed_origins_open_the_live_socket(start_panel: StartPanel, prefix: str) -> None:
    panel = start_panel(WebSocketTelemetryConfig(panel_allowed_origins=("http://localhost:3000",)))
    for origin in (f"http://127.0.0.1:{panel.server.port}", "http://localhost:3000"):
        async with connect(panel.live_url(prefix), origin=Origin(origin), open_timeout=TIMEOUT) as ws:
            assert '"snapshot"' in str(await ws.recv())
    async with open_live(panel.live_url(prefix)) as events:  # no Origin at all: not a browser
        assert (await events.next()).name == "snapshot"


def test_foreign_origin_on_api_is_refused(start_panel: StartPanel) -> None:
    panel = start_panel()
    assert get(panel.url("/api/sessions"), headers={"Origin": "http://127.0.0.1:1"}).status_code == 403
    assert get(panel.url("/api/sessions"), headers={"Origin": "null"}).status_code == 403
    own = f"http://127.0.0.1:{panel.server.port}"
    assert get(panel.url("/api/sessions"), headers={"Origin": own}).status_code == 200


# --- redaction, end to end ----------------------------------------------------------------------

TOKEN = "0123456789abcdef0123456789abcdef"
SECRET_QUERY = (
    "access-token",
    "Access_Token",
    "jwt",
    "id_token",
    "refresh_token",
    "client_secret",
    "X-Amz-Signature",
    "sig",
    "passwd",
    "session",
    "authorization",
)
PLAIN_QUERY = ("room", "design", "lang")


@websocket("/accepting")
async def accepting(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept whatever subprotocol the client offered first, as a careless server does."""
    offered = socket.scope.get("subprotocols") or []
    await socket.accept(subprotocols=offered[0] if offered else None)
    await socket.send_text("ok")
    await socket.close()


async def test_credentials_never_reach_the_span_or_the_panel(start_panel: StartPanel) -> None:
    config = WebSocketTelemetryConfig(capture_headers=("x-auth-token", "x-access-token", "sec-websocket-protocol"))
    panel = start_panel(config, handlers=(echo, accepting))
    query = "&".join([*(f"{name}=leak{i}" for i, name in enumerate(SECRET_QUERY)), *(f"{n}=keep" for n in PLAIN_QUERY)])
    headers = {"X-Auth-Token": "leakA", "X-Access-Token": "leakB"}
    url = panel.ws_url(f"/accepting?{query}")
    async with connect(url, additional_headers=headers, subprotocols=[Subprotocol(TOKEN)]) as ws:
        assert ws.subprotocol == TOKEN
        assert await ws.recv() == "ok"
    wait_for(lambda: panel.exporter.get_finished_spans(), timeout=TIMEOUT, what="the session span")
    [span] = panel.exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    document = get(panel.url("/api/sessions")).json()["sessions"][0]
    seen = repr(attributes) + repr(document) + repr([event.attributes for event in span.events])
    assert "leak" not in seen
    assert TOKEN not in seen
    assert attributes["url.query"] == "&".join(
        [*(f"{name}=REDACTED" for name in SECRET_QUERY), *(f"{n}=keep" for n in PLAIN_QUERY)]
    )
    assert attributes["http.request.header.x-auth-token"] == ("[REDACTED]",)
    assert attributes["http.request.header.x-access-token"] == ("[REDACTED]",)
    assert attributes["http.request.header.sec-websocket-protocol"] == ("[REDACTED]",)
    assert attributes["websocket.subprotocol"] == "[REDACTED]"
    assert document["subprotocol"] == "[REDACTED]"
    assert document["path"] == f"/accepting?{attributes['url.query']}"


# --- refusals are quiet -------------------------------------------------------------------------

_SERVER = """
import uvicorn
from litestar import Litestar
from litestar_ws_otel import instrument_app
from tests.apps import echo

app = Litestar(route_handlers=[echo], debug=True)
instrument_app(app)
uvicorn.run(app, host="127.0.0.1", port=0, log_level="info", ws="websockets-sansio")
"""


@contextlib.contextmanager
def debug_server_log() -> Any:
    """A ``debug=True`` app in a subprocess: yields ``(port, lines)``; ``lines`` fills with its whole output."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}", "OTEL_TRACES_EXPORTER": "none"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        running = wait_for(
            lambda: next(
                (m for m in map(re.compile(r"running on http://127\.0\.0\.1:(\d+)").search, lines) if m), None
            ),
            timeout=20,
            what="the server to start",
        )
        yield int(running[1]), lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server is a test failure
            process.kill()
            raise
        reader.join(timeout=5)


async def test_fifty_refused_requests_log_no_traceback() -> None:
    with debug_server_log() as (port, lines):
        base = f"http://127.0.0.1:{port}/_ws_otel"
        for i in range(40):
            headers = [{"Host": "evil.example"}, {"Origin": "null"}, CROSS_SITE, {"Origin": "http://127.0.0.1:1"}][
                i % 4
            ]
            assert get(f"{base}/api/sessions", headers=headers).status_code == 403
        for i in range(10):
            origin = Origin("null" if i % 2 else "http://127.0.0.1:1")
            await assert_handshake_refused(f"ws://127.0.0.1:{port}/_ws_otel/api/live", origin=origin)
        wait_for(lambda: sum(" 403" in line for line in lines) >= 40, timeout=TIMEOUT, what="the access log")
    output = "".join(lines)
    assert "Traceback" not in output
    assert "PermissionDenied" not in output
    assert "ERROR" not in output
    ours = [line for line in lines if "litestar-ws-otel" in line]
    assert len(ours) <= 3, ours  # at most one line per kind of refusal: host, origin, cross-site
