"""The panel's access rule: loopback by default, listed networks, predicates that fail closed, Host, Origin
and Fetch Metadata checks."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from litestar.connection import ASGIConnection

from litestar_ws_otel import WebSocketTelemetryConfig
from litestar_ws_otel.panel.access import PanelAccess, client_allowed

LOOPBACK = WebSocketTelemetryConfig().panel_allow
NETWORKS = [ipaddress.ip_network(entry) for entry in LOOPBACK]  # type: ignore[union-attr]


async def _receive() -> Any:
    return {"type": "http.disconnect"}


async def _send(_: Any) -> None:
    return None


def refusal(
    config: WebSocketTelemetryConfig,
    client: tuple[str, int] | None = ("127.0.0.1", 5000),
    *,
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    kind: str = "http",
    page: bool = False,
) -> str | None:
    sent = {"host": "127.0.0.1:8000", **(headers or {})}
    scope: dict[str, Any] = {
        "type": kind,
        "scheme": scheme,
        "path": "/_ws_otel/",
        "headers": [(k.encode(), v.encode()) for k, v in sent.items() if v is not None],
        "client": client,
        "state": {},
    }
    return PanelAccess(config).refusal(scope, _receive, _send, page=page)  # type: ignore[arg-type]


def allowed(config: WebSocketTelemetryConfig, client: tuple[str, int] | None = ("127.0.0.1", 5000), **kw: Any) -> bool:
    return refusal(config, client, **kw) is None


DEFAULT = WebSocketTelemetryConfig()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_clients_are_allowed_by_default(host: str) -> None:
    assert client_allowed(host, NETWORKS)
    assert allowed(DEFAULT, (host, 5000))


@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.2", "::2", "::ffff:10.0.0.1", "testclient", "localhost", ""])
def test_other_clients_are_refused_by_default(host: str) -> None:
    assert not client_allowed(host, NETWORKS)
    assert refusal(DEFAULT, (host, 5000)) == "client"


def test_missing_client_is_refused() -> None:
    assert refusal(DEFAULT, None) == "client"


def test_listed_networks_widen_and_replace_the_default() -> None:
    config = WebSocketTelemetryConfig(panel_allow=("10.0.0.0/8", "fd00::/8"))
    assert allowed(config, ("10.20.30.40", 1))
    assert allowed(config, ("fd00::5", 1))
    assert refusal(config, ("127.0.0.1", 1)) == "client"


def test_predicate_decides_and_only_true_allows() -> None:
    config = WebSocketTelemetryConfig(panel_allow=lambda conn: conn.client is not None and conn.client.port == 7)
    assert allowed(config, ("1.2.3.4", 7))
    for verdict in (False, None, "yes", 1):
        assert refusal(WebSocketTelemetryConfig(panel_allow=lambda _conn, v=verdict: v), ("127.0.0.1", 7)) == "client"  # type: ignore[misc]


def test_predicate_that_raises_denies_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: ASGIConnection[Any, Any, Any, Any]) -> bool:
        raise RuntimeError("boom")

    config = WebSocketTelemetryConfig(panel_allow=broken)
    with caplog.at_level(logging.WARNING, logger="litestar_ws_otel"):
        for _ in range(3):
            assert refusal(config) == "client"
    assert [r.getMessage() for r in caplog.records if "panel_allow raised" in r.getMessage()] == [
        "litestar-ws-otel: panel_allow raised; the panel refuses such requests (further occurrences are not logged)"
    ]


# --- Host: DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8000"])
def test_local_host_names_are_served_on_any_port(host: str) -> None:
    assert allowed(DEFAULT, headers={"host": host})


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8000", "127.0.0.2", "localhost.evil.example", "127.0.0.1.nip.io", "", "a b", None],
)
def test_other_hosts_are_refused(host: str | None) -> None:
    assert refusal(DEFAULT, headers={"host": host}) == "host"  # type: ignore[dict-item]


def test_allowed_hosts_widen_the_host_check() -> None:
    config = WebSocketTelemetryConfig(panel_allowed_hosts=("DevBox.internal", "10.0.0.5", "[fd00::1]"))
    for host in ("devbox.internal:8000", "DEVBOX.INTERNAL", "10.0.0.5", "[fd00::1]:80"):
        assert allowed(config, headers={"host": host}), host
    assert refusal(config, headers={"host": "evil.example"}) == "host"


def test_refused_host_is_logged_once_naming_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    from litestar_ws_otel import reporting

    reporting._reported.clear()
    with caplog.at_level(logging.WARNING, logger="litestar_ws_otel"):
        for _ in range(5):
            refusal(DEFAULT, headers={"host": "evil.example"})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "panel_allowed_hosts" in messages[0]
    assert all(r.exc_info is None for r in caplog.records)


# --- Origin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "websocket"])
@pytest.mark.parametrize(
    "origin",
    ["null", "http://127.0.0.1:9999", "http://localhost:8000", "https://127.0.0.1:8000", "file://", "garbage", ""],
)
def test_foreign_and_null_origins_are_refused(kind: str, origin: str) -> None:
    scheme = "ws" if kind == "websocket" else "http"
    assert refusal(DEFAULT, headers={"origin": origin}, kind=kind, scheme=scheme) == "origin"


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http", "127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("wss", "localhost", "https://localhost"),
        ("wss", "localhost:443", "https://LOCALHOST"),
        ("ws", "[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_own_origin_is_allowed_with_ws_http_equivalence(scheme: str, host: str, origin: str) -> None:
    assert allowed(DEFAULT, headers={"host": host, "origin": origin}, scheme=scheme, kind="websocket")


def test_allowed_origins_are_accepted() -> None:
    config = WebSocketTelemetryConfig(panel_allowed_origins=("http://localhost:3000",))
    assert allowed(config, headers={"origin": "http://localhost:3000"}, scheme="ws", kind="websocket")
    assert refusal(config, headers={"origin": "http://localhost:3001"}, scheme="ws", kind="websocket") == "origin"


# --- Fetch Metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_requests_from_other_sites_are_refused(site: str) -> None:
    headers = {"sec-fetch-site": site, "sec-fetch-mode": "no-cors", "sec-fetch-dest": "empty"}
    assert refusal(DEFAULT, headers=headers) == "cross-site"
    assert refusal(DEFAULT, headers=headers, page=True) == "cross-site"


def test_top_level_navigation_to_the_page_is_allowed() -> None:
    navigate = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert allowed(DEFAULT, headers=navigate, page=True)
    assert refusal(DEFAULT, headers=navigate, page=False) == "cross-site"  # not to the API
    framed = {**navigate, "sec-fetch-dest": "iframe"}
    assert refusal(DEFAULT, headers=framed, page=True) == "cross-site"


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_and_user_initiated_requests_pass(site: str) -> None:
    assert allowed(DEFAULT, headers={"sec-fetch-site": site, "sec-fetch-mode": "cors"})
