from __future__ import annotations

import re
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


# --- edges of the checks, and the tables they are built from -------------------------------------


def test_default_redaction_and_capture_lists_hold_exactly_these_names() -> None:
    from litestar_ws_otel.config import DEFAULT_CAPTURE_HEADERS, DEFAULT_REDACT_HEADERS, DEFAULT_REDACT_QUERY_PARAMS

    assert DEFAULT_CAPTURE_HEADERS == ("origin", "sec-websocket-protocol", "sec-websocket-extensions")
    assert DEFAULT_REDACT_HEADERS == (
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "sec-websocket-key",
        "x-api-key",
    )
    assert DEFAULT_REDACT_QUERY_PARAMS == (
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
    config = WebSocketTelemetryConfig()
    assert (config.capture_headers, config.redact_headers, config.redact_query_params) == (
        DEFAULT_CAPTURE_HEADERS,
        DEFAULT_REDACT_HEADERS,
        DEFAULT_REDACT_QUERY_PARAMS,
    )


def test_the_smallest_bounds_are_accepted() -> None:
    config = WebSocketTelemetryConfig(
        max_sessions=1,
        max_messages_per_session=1,
        max_payload_bytes=1,
        binary_preview_bytes=1,
        session_ttl_seconds=0.5,
        export_interval_seconds=0.5,
    )
    assert (config.max_sessions, config.session_ttl_seconds, config.export_interval_seconds) == (1, 0.5, 0.5)


def test_an_https_jaeger_url_is_accepted() -> None:
    assert WebSocketTelemetryConfig(jaeger_url="https://jaeger.example.org").jaeger_url == "https://jaeger.example.org"


def test_a_network_written_with_host_bits_is_accepted_in_panel_allow() -> None:
    """``10.0.0.5/8`` means the network ``10.0.0.0/8``, as ``ip_network(strict=False)`` reads it."""
    assert WebSocketTelemetryConfig(panel_allow=("10.0.0.5/8",)).panel_allow == ("10.0.0.5/8",)


def test_the_highest_port_is_accepted_in_an_origin() -> None:
    origin = "http://localhost:65535"
    assert WebSocketTelemetryConfig(panel_allowed_origins=(origin,)).panel_allowed_origins == (origin,)


def test_a_callable_redactor_is_accepted() -> None:
    def redact(payload: str | bytes, direction: str) -> str | bytes | None:
        return payload

    assert WebSocketTelemetryConfig(redact_payload=redact).redact_payload is redact


def test_lists_are_stored_as_tuples() -> None:
    """The config is frozen and hashable all the way down: a list given for a tuple field is copied to a tuple."""
    config = WebSocketTelemetryConfig(exclude_paths=["^/health$"], capture_headers=["Origin"])  # type: ignore[arg-type]
    assert config.exclude_paths == ("^/health$",)
    assert config.capture_headers == ("origin",)
    hash(config.exclude_paths)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_sessions", True, "max_sessions must be int, got bool True"),
        ("max_sessions", 1.5, "max_sessions must be int, got float 1.5"),
        ("enabled", 1, "enabled must be bool, got int 1"),
        ("capture_payloads", "yes", "capture_payloads must be bool or None, got str 'yes'"),
        ("session_ttl_seconds", False, "session_ttl_seconds must be int or float, got bool False"),
        ("export_interval_seconds", "1", "export_interval_seconds must be int or float or None, got str '1'"),
        ("panel_path", None, "panel_path must be str, got NoneType None"),
        ("jaeger_url", 16686, "jaeger_url must be str or None, got int 16686"),
        ("capture_headers", "origin", "capture_headers must be a tuple of strings, got str 'origin'"),
        ("redact_headers", ("authorization", 3), "redact_headers must hold only strings, got ('authorization', 3)"),
        ("redact_payload", 3, "redact_payload must be callable or None, got int"),
    ],
)
def test_a_wrong_type_is_named_in_the_message(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        WebSocketTelemetryConfig(**{field: value})


@pytest.mark.parametrize(
    ("annotation", "types", "accepted", "rejected", "message"),
    [
        ("bool", (bool,), [True, False], [1, None], "f must be bool, got int 1"),
        ("bool | None", (bool, type(None)), [True, None], ["yes", 0], "f must be bool or None, got str 'yes'"),
        ("int", (int,), [0, 7], [True, 1.0, "1"], "f must be int, got bool True"),
        ("float", (int, float), [1, 0.5], [True, "1", None], "f must be int or float, got bool True"),
        (
            "float | None",
            (int, float, type(None)),
            [2, 0.25, None],
            [False, "x"],
            "f must be int or float or None, got bool False",
        ),
        ("str", (str,), ["", "x"], [None, b"x", True], "f must be str, got NoneType None"),
        ("str | None", (str, type(None)), ["x", None], [1, False], "f must be str or None, got int 1"),
    ],
)
def test_each_annotation_has_its_type_check(
    annotation: str, types: tuple[type, ...], accepted: list[Any], rejected: list[Any], message: str
) -> None:
    """The table a field's check comes from: what each annotation accepts, and ``bool`` is no number."""
    from litestar_ws_otel import config

    for check in (config._instance_of(*types), config._CHECKS_BY_ANNOTATION[annotation]):
        for value in accepted:
            assert check("f", value) is value
        for value in rejected:
            with pytest.raises(ValueError, match="^f must be "):
                check("f", value)
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check("f", rejected[0])


def test_the_checks_by_annotation_cover_exactly_the_field_types() -> None:
    from dataclasses import fields

    from litestar_ws_otel import config

    assert set(config._CHECKS_BY_ANNOTATION) == {str(field.type) for field in fields(WebSocketTelemetryConfig)}
    checks = config._field_checks()
    assert set(checks) == {field.name for field in fields(WebSocketTelemetryConfig)}
    for field in fields(WebSocketTelemetryConfig):
        assert checks[field.name] is config._CHECKS_BY_ANNOTATION[str(field.type)]
        with pytest.raises(ValueError, match=f"^{field.name} must"):
            checks[field.name](field.name, WRONG_TYPE_BY_ANNOTATION[str(field.type)])
