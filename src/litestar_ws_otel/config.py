"""Configuration of WebSocket telemetry."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

__all__ = (
    "DEFAULT_CAPTURE_HEADERS",
    "DEFAULT_REDACT_HEADERS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "TOOLBAR_PANEL_PATH",
    "Direction",
    "PanelAllow",
    "PayloadRedactor",
    "WebSocketTelemetryConfig",
)

Direction = Literal["received", "sent"]
PayloadRedactor = Callable[[str | bytes, Direction], str | bytes | None]
"""``(payload, direction) -> payload or None``; ``None`` drops the preview."""
PanelAllow = Callable[["ASGIConnection[Any, Any, Any, Any]"], bool] | Sequence[str]
"""A predicate over the connection, or hosts and networks (``"10.0.0.0/8"``) allowed to open the panel."""

DEFAULT_CAPTURE_HEADERS: tuple[str, ...] = ("origin", "sec-websocket-protocol", "sec-websocket-extensions")
DEFAULT_REDACT_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "sec-websocket-key",
    "x-api-key",
)
DEFAULT_REDACT_QUERY_PARAMS: tuple[str, ...] = (
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "secret",
    "signature",
    "auth",
)

TOOLBAR_PANEL_PATH = "/_debug_toolbar/otel-ws"
"""Where the panel also answers when litestar-debug-toolbar is installed; never instrumented either."""

# RFC 9110 token characters: what a header field name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$")
_LOOPBACK_ONLY: tuple[str, ...] = ("127.0.0.0/8", "::1")
# A DNS name or an IP literal (IPv6 in brackets); no scheme, port or path.
_MAX_PORT = 65535
_HOST_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?)+$|^\[[0-9a-f:.]+\]$", re.IGNORECASE)
_ORIGIN = re.compile(r"^https?://(?P<host>[^/:?#\[\]]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WebSocketTelemetryConfig:
    """What is recorded for each WebSocket connection, and how much of it is kept.

    Every value is checked when the config is built, so a typo fails at start-up with the field's
    name instead of silently recording nothing.
    """

    enabled: bool = True
    """Turn the instrumentation off without removing it from the app."""
    max_sessions: int = 50
    """Sessions, live and finished, that the recent-sessions store keeps for the panel."""
    max_messages_per_session: int = 100
    """Message records kept per session, for the panel and as span events.

    Counters always count every message. The span also carries the accept, close and exception
    events, so this plus three must fit the SDK's event limit (``OTEL_SPAN_EVENT_COUNT_LIMIT``,
    128 by default).
    """
    capture_payloads: bool | None = None
    """Keep payload previews. ``None`` follows ``app.debug``: bodies are opt-in in production."""
    max_payload_bytes: int = 1024
    """Preview size in UTF-8 bytes. OTLP/gRPC rejects requests over 4 MiB, so keep it small."""
    capture_binary_preview: bool = False
    """Keep a hex preview of binary messages (only when payloads are captured)."""
    binary_preview_bytes: int = 256
    """Bytes of a binary message shown in its hex preview."""
    session_ttl_seconds: float = 3600
    """How long finished sessions stay in the panel's store."""
    capture_headers: tuple[str, ...] = DEFAULT_CAPTURE_HEADERS
    """Handshake headers recorded as ``http.request.header.<name>``; nothing else is recorded."""
    redact_headers: tuple[str, ...] = DEFAULT_REDACT_HEADERS
    """Headers whose values are always shown as ``[REDACTED]``, even when captured."""
    redact_query_params: tuple[str, ...] = DEFAULT_REDACT_QUERY_PARAMS
    """Query parameters whose values become ``REDACTED`` in ``url.query`` (case-insensitive).

    Names the credential rule (``redact_credential_names``) does not already catch; the rule is
    applied on top of this list.
    """
    redact_credential_names: bool = True
    """Also redact query parameters and captured headers whose *names* look like credentials.

    Matched case- and separator-insensitively: names containing ``token``, ``secret``, ``passw``,
    ``signature``, ``credential``, ``jwt``, ``session``, ``sessid``, ``apikey``, ``authoriz`` or
    ``authent``, and names with a whole word ``auth``, ``key``, ``sig`` or ``pwd`` (``x-auth-token``,
    ``X-Amz-Signature``, ``clientSecret``; not ``design``, ``keyboard``, ``author``). ``False`` keeps
    only the explicit lists ``redact_query_params`` and ``redact_headers``.
    """
    redact_payload: PayloadRedactor | None = None
    """Called with each captured payload before it is previewed; an error drops the preview."""
    exclude_paths: tuple[str, ...] = ()
    """Regular expressions; connections whose path matches one are not instrumented."""
    panel_enabled: bool | None = None
    """Serve the inspector panel. ``None`` follows ``app.debug``."""
    panel_path: str = "/_ws_otel"
    """Where the panel is served; it is never instrumented itself."""
    panel_allow: PanelAllow = _LOOPBACK_ONLY
    """Who may open the panel: loopback only unless widened. An error in a predicate denies."""
    panel_allowed_hosts: tuple[str, ...] = ()
    """Host names the panel answers to besides ``localhost``, ``127.0.0.1`` and ``[::1]`` (any port).

    A request whose ``Host`` header names another host gets ``403``: a DNS-rebinding page cannot
    read the panel. Name your hosts here when ``panel_allow`` admits other networks
    (``("devbox.internal", "10.0.0.5")``).
    """
    panel_allowed_origins: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``) besides the panel's own that may open its live socket and API.

    A request with any other ``Origin`` (``null`` included) gets ``403`` before the handshake is
    accepted.
    """
    jaeger_url: str | None = None
    """Base URL of a Jaeger UI (``http://localhost:16686``) that the panel links trace ids to."""
    export_interval_seconds: float | None = 10.0
    """How often an open session's new messages leave, as a ``{name} messages`` child span.

    Long sessions show up in the backend while they last, and a crash loses at most about this
    long of them. ``None`` exports a session only when it closes, as one span.
    """

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("max_sessions", "max_messages_per_session", "max_payload_bytes", "binary_preview_bytes"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        if self.session_ttl_seconds <= 0:
            raise ValueError(f"session_ttl_seconds must be > 0, got {self.session_ttl_seconds!r}")
        if self.export_interval_seconds is not None and not self.export_interval_seconds > 0:
            raise ValueError(f"export_interval_seconds must be > 0 or None, got {self.export_interval_seconds!r}")
        for name in ("capture_headers", "redact_headers"):
            for header in getattr(self, name):
                if not _HEADER_NAME.match(header):
                    raise ValueError(f"{name} must hold HTTP header names, got {header!r}")
            object.__setattr__(self, name, tuple(h.lower() for h in getattr(self, name)))
        object.__setattr__(self, "redact_query_params", tuple(p.lower() for p in self.redact_query_params))
        for pattern in self.exclude_paths:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"exclude_paths holds an invalid regular expression {pattern!r}: {exc}") from exc
        if not self.panel_path.startswith("/") or self.panel_path == "/" or self.panel_path.endswith("/"):
            raise ValueError(f"panel_path must start with '/' and not end with it, got {self.panel_path!r}")
        _check_panel_hosts(self.panel_allowed_hosts)
        _check_panel_origins(self.panel_allowed_origins)
        object.__setattr__(self, "panel_allowed_hosts", tuple(h.lower() for h in self.panel_allowed_hosts))
        object.__setattr__(self, "panel_allowed_origins", tuple(o.lower() for o in self.panel_allowed_origins))
        if self.jaeger_url is not None and not self.jaeger_url.startswith(("http://", "https://")):
            raise ValueError(f"jaeger_url must be an http(s) URL, got {self.jaeger_url!r}")


def _check_types(config: WebSocketTelemetryConfig) -> None:
    """Reject wrong types by field name; ``bool`` is not accepted where a number is meant."""
    for name, check in _FIELD_CHECKS.items():
        value = getattr(config, name)
        checked = check(name, value)
        if checked is not value:
            object.__setattr__(config, name, checked)


_Check = Callable[[str, Any], Any]
"""Takes a field's name and value; returns the value (normalised) or raises ``ValueError``."""


def _instance_of(*allowed: type) -> _Check:
    is_number = bool not in allowed and (int in allowed or float in allowed)
    names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)

    def check(name: str, value: Any) -> Any:
        if not isinstance(value, allowed) or (is_number and isinstance(value, bool)):
            raise ValueError(f"{name} must be {names}, got {type(value).__name__} {value!r}")
        return value

    return check


def _string_tuple(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of strings, got {type(value).__name__} {value!r}")
    if not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must hold only strings, got {value!r}")
    return tuple(value)


def _optional_callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


def _panel_allow(name: str, value: Any) -> Any:
    _check_panel_allow(value)
    return value


_CHECKS_BY_ANNOTATION: dict[str, _Check] = {
    "bool": _instance_of(bool),
    "bool | None": _instance_of(bool, type(None)),
    "int": _instance_of(int),
    "float": _instance_of(int, float),
    "float | None": _instance_of(int, float, type(None)),
    "str": _instance_of(str),
    "str | None": _instance_of(str, type(None)),
    "tuple[str, ...]": _string_tuple,
    "PayloadRedactor | None": _optional_callable,
    "PanelAllow": _panel_allow,
}
"""One check per annotation, so a new field of a known type is checked without further code."""


def _field_checks() -> dict[str, _Check]:
    """Each field's check, from its annotation; a field whose type has no check fails at import."""
    checks: dict[str, _Check] = {}
    for field in fields(WebSocketTelemetryConfig):
        annotation = str(field.type)
        if annotation not in _CHECKS_BY_ANNOTATION:
            raise TypeError(f"WebSocketTelemetryConfig.{field.name}: no type check for {annotation!r}")
        checks[field.name] = _CHECKS_BY_ANNOTATION[annotation]
    return checks


def _check_panel_allow(panel_allow: PanelAllow) -> None:
    if callable(panel_allow):
        return
    if isinstance(panel_allow, str) or not isinstance(panel_allow, (tuple, list)):
        raise ValueError(f"panel_allow must be a callable or a sequence of hosts, got {panel_allow!r}")
    for entry in panel_allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"panel_allow must hold IP addresses or networks, got {entry!r}") from exc


def _check_panel_hosts(hosts: tuple[str, ...]) -> None:
    for host in hosts:
        if not _HOST_NAME.match(host):
            raise ValueError(
                f"panel_allowed_hosts must hold host names or IP addresses without scheme or port, got {host!r}"
            )


def _check_panel_origins(origins: tuple[str, ...]) -> None:
    for origin in origins:
        match = _ORIGIN.match(origin)
        if match is None or not _HOST_NAME.match(match["host"]) or int(match["port"] or 0) > _MAX_PORT:
            raise ValueError(f"panel_allowed_origins must hold origins like 'http://host:port', got {origin!r}")


_FIELD_CHECKS: dict[str, _Check] = _field_checks()
