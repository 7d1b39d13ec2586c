from __future__ import annotations

from typing import Any

import pytest

from litestar_ws_otel import WebSocketTelemetryConfig


def test_defaults_match_the_design() -> None:
    config = WebSocketTelemetryConfig()
    assert config.max_sessions == 50
    assert config.max_messages_per_session == 100
    assert config.capture_payloads is None
    assert config.max_payload_bytes == 1024
    assert config.panel_path == "/_ws_otel"
    assert "authorization" in config.redact_headers
    assert "sec-websocket-key" in config.redact_headers
    assert "token" in config.redact_query_params
    assert config.capture_headers == (
        "origin",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_sessions", 0),
        ("max_sessions", -1),
        ("max_messages_per_session", 0),
        ("max_payload_bytes", -1),
        ("binary_preview_bytes", 0),
        ("session_ttl_seconds", 0),
        ("session_ttl_seconds", -5.0),
    ],
)
def test_non_positive_sizes_are_rejected_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        WebSocketTelemetryConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_sessions", "50"),
        ("max_sessions", True),
        ("max_payload_bytes", 1.5),
        ("enabled", 1),
        ("capture_payloads", "yes"),
        ("panel_path", None),
        ("jaeger_url", 16686),
        ("capture_headers", "origin"),
        ("redact_headers", ["authorization", 3]),
        ("exclude_paths", None),
        ("redact_payload", "not callable"),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must"):
        WebSocketTelemetryConfig(**{field: value})


@pytest.mark.parametrize("header", ["Bad Header", "x-api-key:", "", "naïve"])
def test_header_names_must_be_http_tokens(header: str) -> None:
    with pytest.raises(ValueError, match="^capture_headers must hold HTTP header names"):
        WebSocketTelemetryConfig(capture_headers=(header,))
    with pytest.raises(ValueError, match="^redact_headers must hold HTTP header names"):
        WebSocketTelemetryConfig(redact_headers=(header,))


def test_header_and_query_names_are_normalised_to_lower_case() -> None:
    config = WebSocketTelemetryConfig(
        capture_headers=["Origin", "X-Request-ID"],
        redact_headers=("X-Secret",),
        redact_query_params=("Token",),
    )
    assert config.capture_headers == ("origin", "x-request-id")
    assert config.redact_headers == ("x-secret",)
    assert config.redact_query_params == ("token",)


def test_invalid_exclude_regex_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^exclude_paths holds an invalid regular expression '\('"):
        WebSocketTelemetryConfig(exclude_paths=("(",))


@pytest.mark.parametrize("path", ["_ws_otel", "/", "/panel/", ""])
def test_panel_path_must_be_absolute_without_trailing_slash(path: str) -> None:
    with pytest.raises(ValueError, match="^panel_path must"):
        WebSocketTelemetryConfig(panel_path=path)


@pytest.mark.parametrize("allow", ["127.0.0.1", ("not-an-ip",), 5])
def test_panel_allow_must_be_callable_or_addresses(allow: Any) -> None:
    with pytest.raises(ValueError, match="^panel_allow must"):
        WebSocketTelemetryConfig(panel_allow=allow)


def test_panel_allow_accepts_networks_and_callables() -> None:
    assert WebSocketTelemetryConfig(panel_allow=("10.0.0.0/8", "::1")).panel_allow == (
        "10.0.0.0/8",
        "::1",
    )
    WebSocketTelemetryConfig(panel_allow=lambda connection: True)


def test_jaeger_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="^jaeger_url must be an http"):
        WebSocketTelemetryConfig(jaeger_url="localhost:16686")
    assert WebSocketTelemetryConfig(jaeger_url="http://localhost:16686").jaeger_url == "http://localhost:16686"


def test_config_is_frozen() -> None:
    config = WebSocketTelemetryConfig()
    with pytest.raises(AttributeError):
        config.max_sessions = 3  # type: ignore[misc]


WRONG_TYPE_BY_ANNOTATION: dict[str, Any] = {
    "bool": 1,
    "bool | None": "yes",
    "int": True,
    "float": "1",
    "float | None": True,
    "str": None,
    "str | None": 1,
    "tuple[str, ...]": "origin",
    "PayloadRedactor | None": 3,
    "PanelAllow": "127.0.0.1",
}
"""One value of the wrong type per field annotation: a field of a new type needs an entry here."""


def test_every_field_rejects_a_wrong_type_naming_the_field() -> None:
    from dataclasses import fields

    for field in fields(WebSocketTelemetryConfig):
        annotation = str(field.type)
        assert annotation in WRONG_TYPE_BY_ANNOTATION, f"{field.name}: no wrong value for {annotation}"
        with pytest.raises(ValueError, match=field.name):
            WebSocketTelemetryConfig(**{field.name: WRONG_TYPE_BY_ANNOTATION[annotation]})


def test_a_field_whose_type_has_no_check_fails_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks are derived from the annotations, so a new field cannot skip validation silently."""
    from litestar_ws_otel import config

    monkeypatch.delitem(config._CHECKS_BY_ANNOTATION, "float")
    with pytest.raises(TypeError, match=r"WebSocketTelemetryConfig\.session_ttl_seconds: no type check for 'float'"):
        config._field_checks()


@pytest.mark.parametrize("origin", ["null", "example.com", "http://x/", "ws://x", "http://x:99999", "http://x?y", ""])
def test_panel_allowed_origins_must_be_scheme_host_port(origin: str) -> None:
    with pytest.raises(ValueError, match="^panel_allowed_origins must"):
        WebSocketTelemetryConfig(panel_allowed_origins=(origin,))


@pytest.mark.parametrize("host", ["http://x", "x:80", "a/b", "", "::1", "a b"])
def test_panel_allowed_hosts_must_be_bare_host_names(host: str) -> None:
    with pytest.raises(ValueError, match="^panel_allowed_hosts must"):
        WebSocketTelemetryConfig(panel_allowed_hosts=(host,))


def test_panel_allowed_hosts_and_origins_are_normalised_to_lower_case() -> None:
    config = WebSocketTelemetryConfig(
        panel_allowed_hosts=("DevBox.Internal", "[FD00::1]"), panel_allowed_origins=("HTTP://LocalHost:3000",)
    )
    assert config.panel_allowed_hosts == ("devbox.internal", "[fd00::1]")
    assert config.panel_allowed_origins == ("http://localhost:3000",)
