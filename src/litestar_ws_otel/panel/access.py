"""Who may open the panel: client address, ``Host``, ``Origin`` and Fetch Metadata, checked per request.

The panel shows message payloads and handshake data, so it fails closed. ``PanelAccess.refusal``
names why a request is refused, or returns ``None``; the panel's router answers a refusal itself
(``403``, no data, no exception), so a refused request never logs a traceback, even in debug mode.

- **Client**: ``panel_allow``, loopback by default, or the user's predicate (an error denies).
- **Host**: only ``localhost``, ``127.0.0.1``, ``[::1]`` and ``panel_allowed_hosts``, any port. A
  page on a rebound DNS name (``evil.example`` resolving to ``127.0.0.1``) sends its own name.
- **Origin**: when present, the request's own origin (``ws``/``wss`` counting as ``http``/``https``)
  or one of ``panel_allowed_origins``. ``null`` is refused. Browsers always send it on a WebSocket
  handshake, so a page elsewhere cannot read the live socket.
- **Fetch Metadata**: ``Sec-Fetch-Site: cross-site`` or ``same-site`` (another port on the same
  host is same-site) is refused, except a top-level navigation to the page itself. A ``no-cors``
  ``GET`` carries no ``Origin``, so this is what stops a foreign page from making the server build
  documents it cannot even read.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Final

from litestar.connection import ASGIConnection

from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from litestar.types import Receive, Scope, Send

    from litestar_ws_otel.config import PanelAllow, WebSocketTelemetryConfig

__all__ = ("LOCAL_HOSTS", "PanelAccess", "client_allowed")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Origin = tuple[str, str, int]

LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""Host names the panel always answers to; others must be listed in ``panel_allowed_hosts``."""

_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]/@\s]+)(?::[0-9]{0,5})?")
_ORIGIN = re.compile(r"(https?|wss?)://(\[[0-9a-f:.]+\]|[^:\[\]/@\s]+)(?::([0-9]{1,5}))?")
_HTTP_SCHEME = {"http": "http", "ws": "http", "https": "https", "wss": "https"}
_DEFAULT_PORT = {"http": 80, "https": 443}
_FOREIGN_SITES = frozenset({"cross-site", "same-site"})
_WANTED = frozenset({b"host", b"origin", b"sec-fetch-site", b"sec-fetch-mode", b"sec-fetch-dest"})

# One fixed log line per kind of refusal: the first refusal of each kind is logged, never a traceback.
_REFUSED: Final = {
    "host": (
        "the panel refused a request for a host it does not serve (DNS rebinding is refused this way); "
        "if the panel should answer under this name, add it to panel_allowed_hosts"
    ),
    "origin": (
        "the panel refused a request from another origin; if that page is yours, add its origin to "
        "panel_allowed_origins"
    ),
    "cross-site": "the panel refused a request that Sec-Fetch-Site marks as coming from another site",
    "client": "the panel refused a client that panel_allow does not admit",
}


class PanelAccess:
    """The access rule of every panel route, static assets and the live socket included."""

    __slots__ = ("_hosts", "_networks", "_origins", "_predicate")

    def __init__(self, config: WebSocketTelemetryConfig) -> None:
        self._hosts = LOCAL_HOSTS | frozenset(config.panel_allowed_hosts)
        origins = (_parse_origin(origin) for origin in config.panel_allowed_origins)
        self._origins = frozenset(origin for origin in origins if origin is not None)
        panel_allow: PanelAllow = config.panel_allow
        self._predicate: Callable[[ASGIConnection[Any, Any, Any, Any]], bool] | None = None
        self._networks: tuple[_Network, ...] = ()
        if callable(panel_allow):
            self._predicate = panel_allow
        else:
            self._networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in panel_allow)

    def refusal(self, scope: Scope, receive: Receive, send: Send, *, page: bool) -> str | None:
        """Why this request is refused (``"host"``, ``"origin"``, ``"cross-site"``, ``"client"``), or ``None``.

        Args:
            scope: The request's scope (HTTP or WebSocket).
            receive: Its ``receive``, handed to a ``panel_allow`` predicate's connection.
            send: Its ``send``, likewise.
            page: Whether the request is for the page itself, which a top-level navigation from
                another site may open.

        Returns:
            The kind of refusal; the first of each kind is logged once, without a traceback.
        """
        kind = self._kind(scope, receive, send, page=page)
        if kind is not None:
            report_once(_REFUSED[kind])
        return kind

    def _kind(self, scope: Scope, receive: Receive, send: Send, *, page: bool) -> str | None:
        headers: dict[bytes, str] = {}
        for raw_name, raw_value in scope.get("headers") or ():
            name = raw_name.lower()
            if name in _WANTED:
                # A second Host or Origin is no browser's doing: it may only hide the first.
                headers[name] = "" if name in headers else raw_value.decode("latin-1").strip().lower()
        host = _host_name(headers.get(b"host"))
        if host is None or host not in self._hosts:
            return "host"
        origin = headers.get(b"origin")
        allowed_origin = False
        if origin is not None:
            parsed = _parse_origin(origin)
            own = _parse_origin(f"{scope.get('scheme') or 'http'}://{headers[b'host']}")
            allowed_origin = parsed is not None and (parsed == own or parsed in self._origins)
            if not allowed_origin:
                return "origin"
        site = headers.get(b"sec-fetch-site")
        if site in _FOREIGN_SITES and not allowed_origin:
            navigation = headers.get(b"sec-fetch-mode") == "navigate" and headers.get(b"sec-fetch-dest") == "document"
            if not (page and navigation):
                return "cross-site"
        return None if self._client_allowed(scope, receive, send) else "client"

    def _client_allowed(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if self._predicate is None:
            client = scope.get("client")
            return client_allowed(client[0] if client else None, self._networks)
        try:
            return self._predicate(ASGIConnection(scope, receive, send)) is True
        except Exception as exc:
            report_once("panel_allow raised; the panel refuses such requests", exc)
            return False


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


def _host_name(host: str | None) -> str | None:
    """The name part of a ``Host`` header (lower case), or ``None`` when there is none or it is malformed."""
    if not host:
        return None
    match = _HOST.fullmatch(host)
    return match[1] if match else None


def _parse_origin(origin: str) -> _Origin | None:
    """``(scheme, host, port)`` with ``ws``/``wss`` as ``http``/``https`` and default ports made explicit."""
    match = _ORIGIN.fullmatch(origin.strip().lower())
    if match is None:
        return None  # "null", or not an origin at all
    scheme = _HTTP_SCHEME[match[1]]
    return scheme, match[2], int(match[3]) if match[3] else _DEFAULT_PORT[scheme]
