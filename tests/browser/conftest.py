"""Fixtures for browser tests: headless Chromium (Playwright) against the real panel on a live uvicorn server.

Chromium is the Debian package: Playwright cannot download its own browsers here. Set
``CHROMIUM_PATH`` to use another binary; the tests are skipped when none is found.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar, WebSocket, websocket
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app
from tests.apps import echo
from tests.servers import LiveServer, run_server

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PANEL = "/_ws_otel/"
WAIT_MS = 10_000
"""The longest any single browser-side wait may take; the test machine is small and busy."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: real headless Chromium against a live server")


def _chromium_path() -> str | None:
    candidate = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


# --- the app under test --------------------------------------------------------------------------


@websocket("/reply")
async def reply(socket: WebSocket) -> None:
    """Answer each text message with ``reply to <text>``: sent and received payloads differ."""
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        await socket.send_text(f"reply to {message.get('text')}")


@websocket("/chat/{room:str}")
async def chat(socket: WebSocket) -> None:
    """A small JSON chat: every message comes back wrapped with the room and a sequence number."""
    room = socket.path_params["room"]  # not ``FromPath``: the oldest Litestar tested (2.15) predates it
    await socket.accept()
    sequence = 0
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        sequence += 1
        body = json.loads(message.get("text") or "null")
        await socket.send_text(json.dumps({"type": "message", "room": room, "seq": sequence, "data": body}))


@websocket("/boom")
async def boom(socket: WebSocket) -> None:
    """Fail after the first message: the server closes the connection and the span status is ERROR."""
    await socket.accept()
    await socket.receive_text()
    raise RuntimeError("the handler failed on purpose")


@websocket("/versioned")
async def versioned(socket: WebSocket) -> None:
    """Accept with the ``chat.v2`` subprotocol, then echo."""
    await socket.accept(subprotocols="chat.v2")
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        await socket.send_text(message.get("text") or "")


@websocket("/deny")
async def deny(socket: WebSocket) -> None:
    """Close before accepting: the client's handshake gets HTTP 403."""
    await socket.close(code=4403, reason="denied")


ROUTES = (echo, reply, chat, boom, versioned, deny)


@dataclass
class PanelServer:
    """A live instrumented app and the handle that reads its sessions."""

    server: LiveServer
    handle: Instrumentation
    app: Litestar

    @property
    def panel_url(self) -> str:
        return self.server.http_url(PANEL)

    def ws_url(self, path: str) -> str:
        return self.server.url(path)

    def sessions(self) -> list[dict[str, Any]]:
        return self.handle.processor.sessions()


@pytest.fixture
def panel_server() -> Generator[Callable[..., PanelServer], None, None]:
    """Factory: ``panel_server(**config_fields) -> PanelServer``; every server is stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(**config_fields: Any) -> PanelServer:
            app = Litestar(route_handlers=list(ROUTES), debug=True)
            config = WebSocketTelemetryConfig(**{"capture_binary_preview": True, **config_fields})
            provider = TracerProvider()
            stack.callback(provider.shutdown)
            handle = instrument_app(app, config, tracer_provider=provider)
            # No timeout_graceful_shutdown: a page holding the live socket must not keep uvicorn waiting.
            live = stack.enter_context(run_server(app))
            return PanelServer(server=live, handle=handle, app=app)

        yield start


# --- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module; always closed.

    Not session-wide: while Playwright's sync API is running it owns an event loop in this thread,
    and the asyncio tests of later modules could not start theirs.
    """
    executable = _chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS), timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class PageProblems:
    """What went wrong in the page: script errors, CSP violations, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, problems: PageProblems, panel_server: Callable[..., PanelServer]) -> Iterator[Page]:
    """A fresh page in its own context, closed before the fixture's servers stop.

    Script errors, CSP violations and dialogs are collected in ``problems``.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport={"width": 1360, "height": 820}, color_scheme="light")
    try:
        context.set_default_timeout(WAIT_MS)
        new_page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                problems.errors.append(f"console: {message.text}")

        def on_dialog(dialog: Dialog) -> None:
            problems.dialogs.append(dialog.message)
            dialog.dismiss()

        new_page.on("console", on_console)
        new_page.on("pageerror", lambda error: problems.errors.append(f"page error: {error}"))
        new_page.on("dialog", on_dialog)
        yield new_page
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository root (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
