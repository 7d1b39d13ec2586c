"""The panel's access guard: loopback by default, listed networks, predicates that fail closed."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException

from litestar_ws_otel import WebSocketTelemetryConfig
from litestar_ws_otel.panel.access import access_guard, client_allowed

LOOPBACK = WebSocketTelemetryConfig().panel_allow
NETWORKS = [ipaddress.ip_network(entry) for entry in LOOPBACK]  # type: ignore[union-attr]


def connection(client: tuple[str, int] | None) -> ASGIConnection[Any, Any, Any, Any]:
    scope: dict[str, Any] = {"type": "http", "path": "/_ws_otel/", "headers": [], "client": client, "state": {}}
    return ASGIConnection(scope)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_clients_are_allowed_by_default(host: str) -> None:
    assert client_allowed(host, NETWORKS)
    access_guard(LOOPBACK)(connection((host, 5000)), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.2", "::2", "::ffff:10.0.0.1", "testclient", "localhost", ""])
def test_other_clients_are_refused_by_default(host: str) -> None:
    assert not client_allowed(host, NETWORKS)
    with pytest.raises(PermissionDeniedException):
        access_guard(LOOPBACK)(connection((host, 5000)), None)  # type: ignore[arg-type]


def test_missing_client_is_refused() -> None:
    with pytest.raises(PermissionDeniedException):
        access_guard(LOOPBACK)(connection(None), None)  # type: ignore[arg-type]


def test_listed_networks_widen_and_replace_the_default() -> None:
    guard = access_guard(("10.0.0.0/8", "fd00::/8"))
    guard(connection(("10.20.30.40", 1)), None)  # type: ignore[arg-type]
    guard(connection(("fd00::5", 1)), None)  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedException):
        guard(connection(("127.0.0.1", 1)), None)  # type: ignore[arg-type]


def test_predicate_decides_and_only_true_allows() -> None:
    access_guard(lambda conn: conn.client is not None and conn.client.port == 7)(connection(("1.2.3.4", 7)), None)  # type: ignore[arg-type]
    for verdict in (False, None, "yes", 1):
        with pytest.raises(PermissionDeniedException):
            access_guard(lambda _conn, v=verdict: v)(connection(("127.0.0.1", 7)), None)  # type: ignore[arg-type, misc]


def test_predicate_that_raises_denies_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: ASGIConnection[Any, Any, Any, Any]) -> bool:
        raise RuntimeError("boom")

    guard = access_guard(broken)
    with caplog.at_level(logging.WARNING, logger="litestar_ws_otel"):
        for _ in range(3):
            with pytest.raises(PermissionDeniedException):
                guard(connection(("127.0.0.1", 1)), None)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if "panel_allow" in r.getMessage()] == [
        "litestar-ws-otel: panel_allow raised; the panel refuses such requests (further occurrences are not logged)"
    ]
