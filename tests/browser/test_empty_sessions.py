"""Sessions without messages: the timeline says so instead of loading forever."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.browser.test_panel_page import assert_page_clean, forget_connection_errors, open_panel, session_row

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.browser.conftest import PageProblems, PanelServer

pytestmark = pytest.mark.browser


def test_a_silent_open_session_says_no_messages_yet(
    page: Page, panel_server: Callable[..., PanelServer], problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/echo?quiet=1")):
        row = session_row(page, "/echo?quiet=1")
        expect(row.locator(".badge")).to_have_text("open")
        row.click()
        expect(page.locator("#timeline-empty")).to_have_text("No messages yet.")
        expect(page.locator("#timeline-empty")).to_be_visible()
    assert_page_clean(page, problems)


def test_a_refused_handshake_says_it_had_no_messages(
    page: Page, panel_server: Callable[..., PanelServer], problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    with pytest.raises(InvalidStatus):
        connect(server.ws_url("/deny"))
    row = session_row(page, "/deny")
    expect(row).to_have_count(1)
    row.click()
    expect(page.locator("#timeline-empty")).to_have_text("No messages.")
    expect(page.locator("#timeline-empty")).to_be_visible()
    forget_connection_errors(problems)
    assert_page_clean(page, problems)


def test_a_live_session_shows_when_its_messages_last_left(
    page: Page, panel_server: Callable[..., PanelServer], problems: PageProblems
) -> None:
    server = panel_server(export_interval_seconds=0.2)
    open_panel(page, server)
    with connect(server.ws_url("/echo?live=1")) as ws:
        row = session_row(page, "/echo?live=1")
        row.click()
        expect(page.locator("#head-exported")).to_have_text("not yet")
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        # A clock time once the export timer has sent the message on (HH:MM:SS).
        expect(page.locator("#head-exported")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d"))
    expect(row.locator(".badge")).not_to_have_text("open")
    expect(page.locator("#head-exported")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d.*, then at close$"))
    assert_page_clean(page, problems)


def test_sizes_are_in_binary_units(
    page: Page, panel_server: Callable[..., PanelServer], problems: PageProblems
) -> None:
    """A 1024-byte limit reads "1 KiB", not "1.02 kB"; below a KiB, exact bytes."""
    server = panel_server()
    open_panel(page, server)
    with connect(server.ws_url("/echo?sizes=1"), max_size=None) as ws:
        row = session_row(page, "/echo?sizes=1")
        ws.send("x" * 1000)
        ws.recv(timeout=10)
        expect(row.locator(".s-received")).to_have_text("↓ 1 · 1000 B")
        ws.send("y" * 1024)
        ws.recv(timeout=10)
        expect(row.locator(".s-received")).to_have_text("↓ 2 · 1.98 KiB")
        ws.send("z" * (1536 * 1024 - 2024))
        ws.recv(timeout=10)
        expect(row.locator(".s-received")).to_have_text("↓ 3 · 1.5 MiB")
    assert_page_clean(page, problems)
