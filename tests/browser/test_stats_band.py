"""The statistics band above the session list, in Chromium: it follows sessions as they open and close."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.browser.test_panel_page import assert_page_clean, exchange, open_panel

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.browser.conftest import PageProblems, PanelServer

pytestmark = pytest.mark.browser


def test_the_statistics_band_updates_live(
    page: Page, panel_server: Callable[..., PanelServer], problems: PageProblems
) -> None:
    server = panel_server()
    open_panel(page, server)
    connections = page.locator("#stat-connections")
    expect(page.locator("#stats")).to_be_visible()
    expect(connections).to_have_text("0 connections · 0 open")
    expect(page.locator("#stat-duration")).to_have_text("—")
    with connect(server.ws_url("/echo")) as first:
        expect(connections).to_have_text("1 connection · 1 open")
        exchange(first, "hello", "wörld")
        expect(page.locator("#stat-received")).to_have_text("2 msgs · 11 B")
        expect(page.locator("#stat-sent")).to_have_text("2 msgs · 11 B")
        with connect(server.ws_url("/echo")) as second:
            expect(connections).to_have_text("2 connections · 2 open")
            exchange(second, b"\x00\x01")
            expect(page.locator("#stat-received")).to_have_text("3 msgs · 13 B")
    expect(connections).to_have_text("2 connections · 0 open")
    expect(page.locator("#stat-close-codes")).to_have_text("1000 \u00d72")
    expect(page.locator("#stat-duration")).not_to_have_text("—")
    expect(page.locator("#stat-errors")).to_have_text("0")
    with connect(server.ws_url("/boom")) as failing:
        failing.send("x")
        with pytest.raises(Exception, match="4500|1011"):
            failing.recv(timeout=10)
    expect(page.locator("#stat-errors")).to_have_text("1")
    expect(page.locator("#stat-errors")).to_have_class("mono stat-bad")
    stats = server.handle.statistics.snapshot()
    assert (stats.connections_total, stats.errors) == (3, 1)
    assert_page_clean(page, problems)


def test_the_top_bar_shows_when_span_export_fails(page: Page, problems: PageProblems) -> None:
    """Spans exported to an address where nothing listens: the SDK logs it, and the panel says so."""
    from litestar import Litestar
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from litestar_ws_otel import instrument_app
    from tests.apps import echo
    from tests.export.collector import free_ports
    from tests.servers import run_server

    (dead_port,) = free_ports(1)
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{dead_port}", insecure=True, timeout=2)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    app = Litestar(route_handlers=[echo], debug=True)
    instrument_app(app, tracer_provider=provider)
    try:
        with run_server(app) as server:
            response = page.goto(server.http_url("/_ws_otel/"))
            assert response is not None
            assert response.status == 200
            status = page.locator("#export-status")  # problems of earlier tests may show: the port tells ours
            with connect(server.url("/echo")) as ws:
                exchange(ws, "hello")
            expect(status).to_be_visible()
            expect(status).to_have_text(re.compile(r"^export problem \d\d:\d\d:\d\d(\.\d+)?$"))
            expect(status).to_have_attribute(
                "title", re.compile(rf"export problem.*127\.0\.0\.1:{dead_port}|UNAVAILABLE")
            )
    finally:
        provider.shutdown()
    assert problems.errors == []
