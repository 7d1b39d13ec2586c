"""Who may open the panel: a Litestar guard built from ``WebSocketTelemetryConfig.panel_allow``.

The panel shows message payloads and handshake data, so it fails closed: an unknown client, a
host that is not an IP address, or a predicate that raises all get ``403`` and no data.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from litestar.exceptions import PermissionDeniedException

from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import Guard

    from litestar_ws_otel.config import PanelAllow

__all__ = ("access_guard", "client_allowed")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DENIED = "The litestar-ws-otel panel is not available to this client"


def access_guard(panel_allow: PanelAllow) -> Guard:
    """The guard for every panel route, static assets and the live socket included.

    Args:
        panel_allow: A predicate over the connection, or IP addresses and networks
            (``"10.0.0.0/8"``); the config's default is loopback only.

    Returns:
        A guard that raises ``PermissionDeniedException`` for a client that is not allowed.
    """
    if callable(panel_allow):
        return _PredicateGuard(panel_allow)
    return _NetworkGuard(ipaddress.ip_network(entry, strict=False) for entry in panel_allow)


def client_allowed(host: str | None, networks: Iterable[_Network]) -> bool:
    """Whether ``host`` is an IP address inside one of ``networks``.

    An IPv4 address that a dual-stack socket reports as ``::ffff:127.0.0.1`` counts as its IPv4
    form, so the loopback default works on either stack.
    """
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # "testclient", a unix socket path, a hostname: not an address we can check
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate in network for candidate in candidates for network in networks if candidate.version == network.version
    )


class _NetworkGuard:
    """Allows clients whose address lies in one of the configured networks."""

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[_Network]) -> None:
        self.networks: tuple[_Network, ...] = tuple(networks)

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        client = connection.client
        if not client_allowed(client.host if client else None, self.networks):
            raise PermissionDeniedException(_DENIED)


class _PredicateGuard:
    """Asks the user's predicate; an exception denies, and is logged once, never per request."""

    __slots__ = ("predicate",)

    def __init__(self, predicate: Callable[[ASGIConnection[Any, Any, Any, Any]], bool]) -> None:
        self.predicate = predicate

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        try:
            allowed = self.predicate(connection) is True
        except Exception as exc:
            report_once("panel_allow raised; the panel refuses such requests", exc)
            allowed = False
        if not allowed:
            raise PermissionDeniedException(_DENIED)
