"""Pages that are not the panel try to read it, in a real Chromium; the panel's own page shows hidden characters.

The attacker's page is served by a second server on another loopback port (another origin, the
same site), and as a ``data:`` URL (``Origin: null``). While a session carries a secret, the page
opens the panel's live socket and fetches ``api/sessions``, and writes what it got into its DOM.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar, MediaType, get
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.browser.conftest import PANEL, PageProblems, PanelServer
from tests.servers import run_server, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    StartServer = Callable[..., PanelServer]

pytestmark = pytest.mark.browser

SECRET = "top-secret-7c1e"
PAGE = """<!doctype html><html><body><pre id="log"></pre><script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const target = "__PANEL__";
const ws = new WebSocket(target.replace("http", "ws") + "api/live");
ws.onopen = () => log("ws-open");
ws.onmessage = (event) => log("ws-message " + event.data);
ws.onclose = (event) => log("ws-close " + event.code);
fetch(target + "api/sessions", { mode: "no-cors", credentials: "include" })
  .then((r) => log("no-cors " + r.type + " " + r.status))
  .catch((e) => log("no-cors-error"));
fetch(target + "api/sessions")
  .then((r) => r.text().then((t) => log("cors " + r.status + " " + t)))
  .catch((e) => log("cors-error"));
</script></body></html>"""


def attacker_html(server: PanelServer) -> str:
    return PAGE.replace("__PANEL__", server.panel_url)


def count_store_reads(server: PanelServer) -> list[int]:
    """Counts how often the panel's API reads the store: a refused request must not get that far."""
    reads = [0]
    processor: Any = server.handle.processor
    original = processor.sessions

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return original(*args, **kwargs)

    processor.sessions = counted
    return reads


def assert_attacker_got_nothing(page: Page, server: PanelServer, reads: list[int]) -> None:
    log = page.locator("#log")
    expect(log).to_contain_text("ws-close 1006")
    expect(log).to_contain_text(re.compile(r"no-cors (opaque 0)|no-cors-error"))
    expect(log).to_contain_text(re.compile(r"cors-error"))
    text = log.inner_text()
    assert "ws-open" not in text
    assert "ws-message" not in text
    assert SECRET not in text
    assert reads == [0]
    assert server.sessions()[0]["messages"][0]["payload"] == SECRET  # the secret was there to take


def test_page_on_another_loopback_port_cannot_read_the_panel(
    page: Page, problems: PageProblems, panel_server: StartServer
) -> None:
    server = panel_server()
    html = attacker_html(server)

    @get("/", media_type=MediaType.HTML, sync_to_thread=False)
    def attacker() -> str:
        return html

    with run_server(Litestar(route_handlers=[attacker])) as evil, connect(server.ws_url("/echo")) as ws:
        ws.send(SECRET)
        assert ws.recv(timeout=10) == SECRET
        wait_for(lambda: server.sessions() and server.sessions()[0]["messages"], what="the secret message")
        reads = count_store_reads(server)
        page.goto(evil.http_url("/"))
        assert_attacker_got_nothing(page, server, reads)


def test_null_origin_page_cannot_read_the_panel(page: Page, problems: PageProblems, panel_server: StartServer) -> None:
    server = panel_server()
    with connect(server.ws_url("/echo")) as ws:
        ws.send(SECRET)
        assert ws.recv(timeout=10) == SECRET
        wait_for(lambda: server.sessions() and server.sessions()[0]["messages"], what="the secret message")
        reads = count_store_reads(server)
        page.goto("data:text/html," + attacker_html(server).replace("#", "%23").replace("\n", "%0A"))
        assert_attacker_got_nothing(page, server, reads)


def test_bidi_and_zero_width_characters_are_shown_as_markers(
    page: Page, problems: PageProblems, panel_server: StartServer
) -> None:
    server = panel_server(capture_payloads=True)
    page.goto(server.server.http_url(PANEL))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    with connect(server.ws_url("/chat/%E2%80%AEgnp.exe")) as ws:
        ws.send('"zero\u200bwidth \u2066isolate\u2069"')  # the characters themselves, not JSON escapes
        ws.recv(timeout=10)
        row = page.locator("#session-list .session").first
        expect(row.locator(".s-path")).to_have_text("/chat/⟨U+202E⟩gnp.exe")
        assert row.locator(".s-path").get_attribute("title") == "/chat/⟨U+202E⟩gnp.exe"
        row.click()
        expect(page.locator("#head-path")).to_have_text("/chat/⟨U+202E⟩gnp.exe")
        preview = page.locator("#timeline .msg .c-preview").first
        expect(preview).to_contain_text("zero⟨U+200B⟩width ⟨U+2066⟩isolate⟨U+2069⟩")
    assert not problems.errors, problems.errors
