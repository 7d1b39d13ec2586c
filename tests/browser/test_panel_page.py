"""The inspector panel in a real headless Chromium, against the package's own routes on a live server.

WebSocket sessions are started from the test with the ``websockets`` client while the page is open,
so everything the page shows arrives over its live socket. Every wait is bounded (Playwright's
``expect`` and ``wait_for`` with at most 10 s, ``WAIT_MS`` in conftest); nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

import pytest
from playwright.sync_api import Locator, Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.browser.conftest import PANEL, PageProblems, PanelServer
from tests.servers import run_server, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from litestar.connection import ASGIConnection

    StartServer = Callable[..., PanelServer]

pytestmark = pytest.mark.browser

RECV_TIMEOUT = 10.0
STOP_SECONDS = 5.0
"""A server with the page still connected must stop within this (uvicorn would wait forever on an HTTP stream)."""


# --- helpers -------------------------------------------------------------------------------------


def open_panel(page: Page, server: PanelServer, path: str = PANEL) -> None:
    """Load the page and wait until its live socket is connected."""
    response = page.goto(server.server.http_url(path))
    assert response is not None
    assert response.status == 200
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Set once; a reload would lose it, so later checks prove that updates arrived live.
    page.evaluate("window.__loadedOnce = true")


def session_row(page: Page, path: str) -> Locator:
    """The session list row whose (redacted) path is exactly ``path``."""
    exact_path = page.locator(".s-path", has_text=re.compile(f"^{re.escape(path)}$"))
    return page.locator("#session-list .session").filter(has=exact_path)


def previews(page: Page) -> Locator:
    """The payload previews of the timeline's visible messages, oldest first."""
    return page.locator("#timeline .msg:not([hidden]) .c-preview")


def directions(page: Page) -> Locator:
    return page.locator("#timeline .msg:not([hidden]) .dir-label")


def exchange(ws: ClientConnection, *messages: str | bytes) -> None:
    """Send each message and wait for the server's answer, so the server has seen it."""
    for message in messages:
        ws.send(message)
        ws.recv(timeout=RECV_TIMEOUT)


def forget_connection_errors(problems: PageProblems) -> None:
    """Drop what Chromium logs for a refused WebSocket handshake or an unreachable server: expected here."""
    expected = re.compile(r"WebSocket connection to .*/api/live' failed|Failed to load resource|ERR_CONNECTION_REFUSED")
    problems.errors[:] = [error for error in problems.errors if not expected.search(error)]


def assert_page_clean(page: Page, problems: PageProblems) -> None:
    """No script errors, CSP violations or dialogs, and the page was never reloaded."""
    assert problems.errors == []
    assert problems.dialogs == []
    assert page.evaluate("window.__loadedOnce") is True


# --- tests ---------------------------------------------------------------------------------------


def test_session_appears_live_and_shows_messages_in_order(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    expect(page.locator("#sessions-empty")).to_be_visible()

    with connect(server.ws_url("/echo?token=s3cret&room=1")) as ws:
        row = session_row(page, "/echo?token=REDACTED&room=1")
        expect(row).to_have_count(1)
        expect(row.locator(".badge")).to_have_text("open")
        expect(row.locator(".s-route")).to_have_text("/echo")
        exchange(ws, "first", "second", "third")
        expect(row.locator(".s-received")).to_have_text("↓ 3 · 16 B")
        expect(row.locator(".s-sent")).to_have_text("↑ 3 · 16 B")

        row.click()
        expect(row).to_have_attribute("aria-selected", "true")
        expect(previews(page)).to_have_text(["first", "first", "second", "second", "third", "third"])
        expect(directions(page)).to_have_text(["recv", "sent"] * 3)
        expect(page.locator("#timeline .event-accept")).to_contain_text("Connection accepted")
        expect(page.locator("#head-duration")).to_contain_text("open")
        ws.send("fourth")
        ws.recv(timeout=RECV_TIMEOUT)
        expect(previews(page)).to_have_count(8)
        expect(previews(page).last).to_have_text("fourth")

    expect(row.locator(".badge")).to_have_text("closed")
    expect(row.locator(".s-close")).to_have_text("1000 by client")
    expect(page.locator("#timeline .row").last).to_have_class(re.compile(r"\bevent-close\b"))
    expect(page.locator("#timeline .row").last.locator(".c-event")).to_have_text("Closed 1000 by client")
    session = server.sessions()[0]
    expect(page.locator("#head-trace")).to_have_text(session["trace_id"])
    expect(page.locator("#head-span")).to_have_text(session["span_id"])
    expect(page.locator("#head-status")).to_have_text("OK")  # in words; the span status is in the tooltip
    expect(page.locator("#head-status .tag")).to_have_attribute("title", "span status UNSET: no server error")
    expect(page.locator("#jaeger-link")).to_be_hidden()
    assert_page_clean(page, problems)


def test_error_session_shows_status_and_lifecycle_events(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/boom")) as ws:
        ws.send("go")
        wait_for(lambda: server.sessions() and server.sessions()[0]["state"] == "closed", what="the failed session")
    code = server.sessions()[0]["close_code"]

    row = session_row(page, "/boom")
    expect(row.locator(".badge")).to_have_text("error")
    expect(row.locator(".s-close")).to_contain_text(f"{code}")
    expect(row.locator(".s-close")).to_contain_text("by server")
    row.click()
    expect(page.locator("#head-status")).to_have_text("error")
    expect(page.locator("#head-status .tag")).to_have_attribute("title", "span status ERROR (error.type RuntimeError)")
    expect(page.locator("#timeline .row .dir-label")).to_have_text(["accept", "recv", "error", "close"])
    expect(page.locator("#timeline .event-close")).to_contain_text(f"Closed {code}")
    assert_page_clean(page, problems)


def test_accept_event_shows_subprotocol_or_that_the_handshake_was_denied(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/versioned"), subprotocols=[Subprotocol("chat.v2")]) as ws:
        exchange(ws, "v2")
    with pytest.raises(InvalidStatus):
        connect(server.ws_url("/deny"), open_timeout=RECV_TIMEOUT)
    wait_for(lambda: len(server.sessions()) == 2 and server.sessions()[0]["state"] == "closed", what="the denial")
    denied, accepted = server.sessions()
    assert denied["accepted_at"] is None
    assert accepted["subprotocol"] == "chat.v2"

    session_row(page, "/versioned").click()
    accept = page.locator("#timeline .event-accept")
    expect(accept.locator(".c-event")).to_have_text("Connection accepted (subprotocol chat.v2)")
    session_row(page, "/deny").click()
    expect(accept.locator(".c-event")).to_have_text("Connection not accepted (HTTP 403)")
    expect(page.locator("#timeline .row .dir-label")).to_have_text(["accept", "close"])
    assert_page_clean(page, problems)


def test_direction_filters_and_search(page: Page, panel_server: StartServer, problems: PageProblems) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/reply")) as ws:
        exchange(ws, "apple", "banana", "cherry")
        session_row(page, "/reply").click()
        expect(previews(page)).to_have_count(6)

        page.get_by_role("button", name="Sent", exact=True).click()
        expect(previews(page)).to_have_text(["reply to apple", "reply to banana", "reply to cherry"])
        expect(page.locator("#timeline .event-accept")).to_be_hidden()
        page.get_by_role("button", name="Received", exact=True).click()
        expect(previews(page)).to_have_text(["apple", "banana", "cherry"])
        expect(page.locator("#match-count")).to_have_text("3 of 6 messages")

        # A message arriving while a filter is on is filtered too.
        exchange(ws, "damson")
        expect(previews(page)).to_have_text(["apple", "banana", "cherry", "damson"])

        page.get_by_role("button", name="All", exact=True).click()
        search = page.get_by_role("searchbox", name="Search message payloads")
        search.fill("BAN")
        expect(previews(page)).to_have_text(["banana", "reply to banana"])
        expect(page.locator("#timeline .msg:not([hidden]) mark").first).to_have_text("ban")

        page.get_by_role("button", name="Use regular expression").click()
        search.fill("^(apple|cherry)$")
        expect(previews(page)).to_have_text(["apple", "cherry"])
        page.get_by_role("button", name="Sent", exact=True).click()
        search.fill("(apple|damson)$")
        expect(previews(page)).to_have_text(["reply to apple", "reply to damson"])

        search.fill("(unclosed")
        expect(page.locator("#search-error")).to_contain_text("Invalid regex")
        expect(search).to_have_attribute("aria-invalid", "true")

        search.fill("")
        page.get_by_role("button", name="All", exact=True).click()
        expect(previews(page)).to_have_count(8)
        expect(page.locator("#search-error")).to_have_text("")
    assert_page_clean(page, problems)


def test_hostile_payloads_render_as_text_and_never_run(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    script = '<script>window.__pwned = "script"</script>'
    image = "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">"
    as_json = json.dumps({"html": "<img src=y onerror=alert('json')>", "ok": True})
    reason = "<img src=z onerror=alert('reason')>"
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, script, image, as_json)
        ws.close(code=4000, reason=reason)

    row = session_row(page, "/echo")
    expect(row.locator(".s-close")).to_have_text(f"4000 “{reason}” by client")
    row.click()
    expect(previews(page)).to_have_text([script, script, image, image, as_json, as_json])
    expect(page.locator("#timeline .event-close .c-event")).to_have_text(f"Closed 4000 “{reason}” by client")

    page.locator("#timeline .msg").nth(2).click()
    expect(page.locator("#md-body")).to_have_text(image)
    page.locator("#timeline .msg").nth(4).click()
    expect(page.locator("#md-body")).to_have_text(json.dumps(json.loads(as_json), indent=2))

    assert page.locator("#layout img, #layout script, #layout iframe").count() == 0
    assert page.evaluate("document.scripts.length") == 1
    assert page.evaluate("window.__pwned") is None
    assert_page_clean(page, problems)


def test_pause_holds_updates_and_resume_catches_up(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "one")
        row = session_row(page, "/echo")
        row.click()
        expect(previews(page)).to_have_text(["one", "one"])
        page.locator("#timeline .msg").first.click()
        expect(page.locator("#md-body")).to_have_text("one")

        pause = page.get_by_role("button", name=re.compile("^Pause"))
        pause.click()
        resume = page.get_by_role("button", name=re.compile("^Resume"))
        expect(resume).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#live-status")).to_have_text("Paused")

        exchange(ws, "two", "three")
        with connect(server.ws_url("/reply")) as other:
            exchange(other, "hello")
            # The page has received these deltas (it counts them) but shows none of them.
            expect(page.locator("#pending")).to_have_attribute("title", "1 new session, 6 new messages waiting")
            expect(previews(page)).to_have_text(["one", "one"])
            expect(row.locator(".s-received")).to_have_text("↓ 1 · 3 B")
            expect(session_row(page, "/reply")).to_have_count(0)

            resume.click()
            expect(page.get_by_role("button", name=re.compile("^Pause"))).to_have_attribute("aria-pressed", "false")
            expect(previews(page)).to_have_text(["one", "one", "two", "two", "three", "three"])
            expect(row.locator(".s-received")).to_have_text("↓ 3 · 11 B")
            expect(session_row(page, "/reply")).to_have_count(1)
            expect(page.locator("#pending")).to_be_hidden()
            expect(page.locator("#live-status")).to_have_text("Live")

            # Catching up kept the selection and the open message detail.
            expect(row).to_have_attribute("aria-selected", "true")
            expect(page.locator("#timeline .msg").first).to_have_attribute("aria-selected", "true")
            expect(page.locator("#md-body")).to_have_text("one")

            # Live again: new messages show up by themselves.
            exchange(ws, "four")
            expect(previews(page)).to_have_count(8)
    assert_page_clean(page, problems)


def test_message_details_empty_truncated_binary_and_json(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    server = panel_server(max_payload_bytes=100, binary_preview_bytes=32)
    open_panel(page, server)
    document = {"user": "ann", "tags": ["a", "b"], "meta": {"ok": True, "n": None}}
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "", "y" * 200, bytes(range(40)), json.dumps(document))
    session_row(page, "/echo").click()
    expect(previews(page)).to_have_count(8)
    rows = page.locator("#timeline .msg")

    expect(previews(page).nth(0)).to_have_text("(empty)")
    expect(rows.nth(0).locator(".c-size")).to_have_text("0 B")
    rows.nth(0).click()
    expect(page.locator("#md-body")).to_have_text("(empty)")

    expect(rows.nth(2).locator(".c-badges")).to_have_text("truncated · 200 B")
    rows.nth(2).click()
    expect(page.locator("#md-badges")).to_have_text("truncated · original 200 B")
    expect(page.locator("#md-note")).to_have_text("Showing the first 100 B of 200 B.")
    expect(page.locator("#md-body")).to_have_text("y" * 100)

    expect(rows.nth(4).locator(".c-type")).to_have_text("binary")
    expect(previews(page).nth(4)).to_have_text(" ".join(f"{byte:02x}" for byte in range(32)))
    rows.nth(4).click()
    expect(page.locator("#md-body")).to_contain_text(
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    expect(page.locator("#md-body")).to_contain_text(
        "00000010  10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f  |................|"
    )
    expect(page.locator("#md-note")).to_contain_text("Showing the first 32 B of 40 B.")

    rows.nth(6).click()
    expect(page.locator("#md-body")).to_have_text(json.dumps(document, indent=2))
    expect(page.locator("#md-body .j-key").first).to_have_text('"user"')
    page.get_by_role("button", name="Raw", exact=True).click()
    expect(page.locator("#md-body")).to_have_text(json.dumps(document))
    page.get_by_role("button", name="Close message detail").click()
    expect(page.locator("#message-detail")).to_be_hidden()
    assert_page_clean(page, problems)


def test_payloads_not_captured(page: Page, panel_server: StartServer, problems: PageProblems) -> None:
    server = panel_server(capture_payloads=False)
    open_panel(page, server)
    expect(page.locator("#capture-off")).to_be_visible()
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "hidden")
        session_row(page, "/echo").click()
        expect(previews(page)).to_have_text(["(not captured)", "(not captured)"])
    assert "hidden" not in page.locator("#layout").inner_text()
    assert_page_clean(page, problems)


def test_jaeger_link_and_export(page: Page, panel_server: StartServer, problems: PageProblems) -> None:
    server = panel_server(jaeger_url="http://localhost:16686")
    open_panel(page, server)
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "traced")
    session_row(page, "/echo").click()
    session = server.sessions()[0]
    link = page.get_by_role("link", name="Open in Jaeger")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"http://localhost:16686/trace/{session['trace_id']}")
    expect(link).to_have_attribute("target", "_blank")

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy trace id").click()
    expect(page.locator("#copy-status")).to_have_text("Trace id copied")
    assert page.evaluate("navigator.clipboard.readText()") == session["trace_id"]

    export = page.get_by_role("link", name="Export JSON")
    expect(export).to_have_attribute("href", server.server.http_url(f"{PANEL}api/sessions/{session['span_id']}/export"))
    response = page.request.get(export.get_attribute("href") or "")
    assert response.status == 200
    exported = response.json()
    assert exported["span_id"] == session["span_id"]
    assert [message["payload"] for message in exported["messages"]] == ["traced", "traced"]
    assert_page_clean(page, problems)


def test_keyboard_navigation_and_clear(page: Page, panel_server: StartServer, problems: PageProblems) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/echo")) as first:
        exchange(first, "a")
    with connect(server.ws_url("/reply")) as second:
        exchange(second, "b")
    newest, older = session_row(page, "/reply"), session_row(page, "/echo")
    expect(page.locator("#session-list .session")).to_have_count(2)
    expect(page.locator("#session-list .session .s-path")).to_have_text(["/reply", "/echo"])

    newest.click()
    expect(page.locator("#head-route")).to_have_text("/reply")
    page.keyboard.press("ArrowDown")
    expect(older).to_have_attribute("aria-selected", "true")
    expect(older).to_be_focused()
    expect(page.locator("#head-route")).to_have_text("/echo")
    page.locator("#timeline .row").first.focus()  # the timeline's single tab stop: the accept event
    page.keyboard.press("ArrowDown")
    expect(page.locator("#timeline .msg").first).to_be_focused()
    expect(page.locator("#md-body")).to_have_text("a")
    page.keyboard.press("Escape")
    expect(page.locator("#message-detail")).to_be_hidden()

    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#session-list .session")).to_have_count(0)
    expect(page.locator("#sessions-empty")).to_be_visible()
    with connect(server.ws_url("/echo?after=clear")) as third:
        exchange(third, "c")
        expect(page.locator("#session-list .session .s-path")).to_have_text(["/echo?after=clear"])
    assert_page_clean(page, problems)


def test_refused_client_gets_403_and_no_data(page: Page, panel_server: StartServer) -> None:
    server = panel_server(panel_allow=("10.0.0.0/8",))
    with connect(server.ws_url("/echo?room=secret-room")) as ws:
        exchange(ws, "secret-payload")
    wait_for(server.sessions, what="a recorded session")

    response = page.goto(server.panel_url)
    assert response is not None
    assert response.status == 403
    assert page.locator("#session-list").count() == 0
    content = page.content()
    assert "secret-payload" not in content
    assert "secret-room" not in content
    for path in (
        "api/config",
        "api/sessions",
        f"api/sessions/{server.sessions()[0]['span_id']}",
        "static/js/main.js",
    ):
        answer = page.request.get(server.server.http_url(PANEL + path))
        assert answer.status == 403, path
        assert b"secret" not in answer.body()
    # The live socket's handshake is refused too: it never opens and carries nothing.
    outcome = page.evaluate(
        """url => new Promise((resolve) => {
            const socket = new WebSocket(url);
            const frames = [];
            let opened = false;
            socket.onopen = () => { opened = true; };
            socket.onmessage = (event) => frames.push(event.data);
            socket.onclose = () => resolve({ opened, frames });
        })""",
        server.ws_url(PANEL + "api/live"),
    )
    assert outcome == {"opened": False, "frames": []}


def test_refused_live_socket_shows_the_denied_view(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    """A refused handshake looks like any failed connection to the page, which then asks ``api/config``."""
    deny = {"live": True, "all": False}

    def allow(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        return not deny["all"] and not (deny["live"] and connection.url.path.endswith("/api/live"))

    server = panel_server(panel_allow=allow)
    response = page.goto(server.panel_url)
    assert response is not None
    assert response.status == 200
    # Refused, but api/config still answers: not a denial yet, so the page keeps reconnecting.
    expect(page.locator("#live-status")).to_have_text("Reconnecting…")
    expect(page.locator("#denied")).to_be_hidden()
    deny["all"] = True
    expect(page.locator("#denied")).to_be_visible()
    expect(page.locator("#layout")).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text("Denied")
    forget_connection_errors(problems)
    assert problems.errors == []


def test_page_reconnects_after_a_server_restart(page: Page, panel_server: StartServer, problems: PageProblems) -> None:
    """What ``uvicorn --reload`` does: the server stops with the page open, starts again, and the page catches up."""
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "before")
    row = session_row(page, "/echo")
    row.click()
    expect(previews(page)).to_have_text(["before", "before"])

    server.server.stop(timeout=STOP_SECONDS)  # the page's live socket does not hold the shutdown
    expect(page.locator("#live-status")).to_have_text("Reconnecting…")
    expect(page.locator("#notice")).to_contain_text("Reconnecting")

    with run_server(server.app, port=server.server.port) as again:
        expect(page.locator("#live-status")).to_have_text("Live")
        expect(page.locator("#notice")).to_be_hidden()
        with connect(again.url("/reply")) as ws:
            exchange(ws, "after")
        expect(session_row(page, "/reply")).to_have_count(1)
        # The new snapshot was merged: the selection and its messages stayed.
        expect(row).to_have_attribute("aria-selected", "true")
        expect(previews(page)).to_have_text(["before", "before"])
        again.stop(timeout=STOP_SECONDS)
    forget_connection_errors(problems)
    assert_page_clean(page, problems)


def test_page_works_under_the_debug_toolbar_prefix(
    page: Page, panel_server: StartServer, problems: PageProblems
) -> None:
    pytest.importorskip("debug_toolbar")
    server = panel_server()
    open_panel(page, server, "/_debug_toolbar/otel-ws/")
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "via the toolbar")
        session_row(page, "/echo").click()
        expect(previews(page)).to_have_text(["via the toolbar", "via the toolbar"])
    expect(page.get_by_role("link", name="Export JSON")).to_have_attribute(
        "href", re.compile(r"/_debug_toolbar/otel-ws/api/sessions/[0-9a-f]{16}/export$")
    )
    assert_page_clean(page, problems)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshot(
    page: Page, panel_server: StartServer, problems: PageProblems, artifacts: Path, scheme: Literal["light", "dark"]
) -> None:
    """A few sessions, one expanded with a message open: ``test-artifacts/panel.png`` (and ``panel-dark.png``)."""
    page.emulate_media(color_scheme=scheme)
    server = panel_server(jaeger_url="http://localhost:16686", max_payload_bytes=256)
    open_panel(page, server)
    with connect(server.ws_url("/echo")) as ws:
        exchange(ws, "ping", b"\x00\x01\x02binary\xff", "", "x" * 600)
    with connect(server.ws_url("/chat/ops")) as ops:
        exchange(ops, json.dumps({"user": "bot", "text": "nightly build green"}))
        ops.close(code=1001, reason="going away")
    with connect(server.ws_url("/boom")) as ws:
        ws.send("crash please")
        wait_for(lambda: server.sessions()[0]["state"] == "closed", what="the failed session")
    with connect(server.ws_url("/chat/lobby?token=secret&user=ann")) as chat:
        for text in ("hi all", "anyone around?", "deploy is done", "bye"):
            exchange(chat, json.dumps({"user": "ann", "text": text, "mentions": [], "meta": {"client": "web"}}))
        with connect(server.ws_url("/reply?client=cli")) as live:
            exchange(live, "status")
            expect(page.locator("#session-list .session")).to_have_count(5)
            session_row(page, "/chat/lobby?token=REDACTED&user=ann").click()
            expect(previews(page)).to_have_count(8)
            page.locator("#timeline .msg").nth(5).click()
            expect(page.locator("#md-body .j-key").first).to_be_visible()
            name = "panel.png" if scheme == "light" else "panel-dark.png"
            page.screenshot(path=str(artifacts / name))
    assert (artifacts / name).stat().st_size > 10_000
    assert_page_clean(page, problems)
