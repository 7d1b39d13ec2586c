"""``config_from_env``: each ``OTEL_PYTHON_LITESTAR_WS_*`` variable, its good values and its errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from litestar_ws_otel import WebSocketTelemetryConfig
from litestar_ws_otel.config import DEFAULT_CAPTURE_HEADERS, DEFAULT_REDACT_HEADERS
from litestar_ws_otel.env_config import (
    OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS,
    OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS,
    OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS,
    OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL,
    OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED,
    OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS,
    config_from_env,
)


def test_no_variables_means_the_defaults() -> None:
    assert config_from_env({}) == WebSocketTelemetryConfig()


def test_empty_or_blank_variables_mean_unset() -> None:
    """The OpenTelemetry specification treats an empty value as unset."""
    variables = (
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS,
        OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS,
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS,
        OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS,
        OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED,
        OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL,
    )
    blank = dict(zip(variables, ("", " ", "\t", "", "  ", ""), strict=True))
    assert config_from_env(blank) == WebSocketTelemetryConfig()


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED, "true")
    assert config_from_env().panel_enabled is True


def test_other_variables_are_ignored() -> None:
    assert config_from_env({"OTEL_PYTHON_LITESTAR_WS_MAX_SESSIONS": "x", "OTEL_SERVICE_NAME": "y"}) == (
        WebSocketTelemetryConfig()
    )


@pytest.mark.parametrize("variable", [OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS, OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED])
@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("TRUE", True), (" False ", False)])
def test_booleans(variable: str, value: str, expected: bool) -> None:
    field = "capture_payloads" if variable == OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS else "panel_enabled"
    config = config_from_env({variable: value})
    assert getattr(config, field) is expected
    assert config == WebSocketTelemetryConfig(**{field: expected})


@pytest.mark.parametrize("variable", [OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS, OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED])
@pytest.mark.parametrize("value", ["yes please", "1", "0", "on", "truee", "none"])
def test_a_boolean_must_be_true_or_false(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable} must be true or false, got {re.escape(repr(value))}$"):
        config_from_env({variable: value})


def test_the_example_message_reads_as_documented() -> None:
    with pytest.raises(ValueError, match="must be true or false") as raised:
        config_from_env({OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS: "yes please"})
    assert str(raised.value) == "OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS must be true or false, got 'yes please'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("^/health$", ("^/health$",)),
        ("^/health$,^/internal/.*", ("^/health$", "^/internal/.*")),
        (" ^/a$ , , ^/b$ ,", ("^/a$", "^/b$")),
    ],
)
def test_excluded_paths_are_comma_separated_regular_expressions(value: str, expected: tuple[str, ...]) -> None:
    assert config_from_env({OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: value}).exclude_paths == expected


def test_an_invalid_excluded_path_names_the_variable_and_the_field() -> None:
    with pytest.raises(
        ValueError, match=r"^OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS is invalid: exclude_paths .*'\^/\('"
    ):
        config_from_env({OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: "^/ok$,^/("})


def test_capture_headers_replace_the_default_list() -> None:
    config = config_from_env({OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS: "Origin, X-Request-Id"})
    assert config.capture_headers == ("origin", "x-request-id")
    assert config.capture_headers != DEFAULT_CAPTURE_HEADERS


def test_redact_headers_add_to_the_defaults() -> None:
    """Listing one more secret header must not un-redact ``authorization`` or ``cookie``."""
    config = config_from_env({OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS: "X-Tenant-Secret, Cookie,x-other"})
    assert config.redact_headers == (*DEFAULT_REDACT_HEADERS, "x-tenant-secret", "x-other")


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        (OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS, "capture_headers"),
        (OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS, "redact_headers"),
    ],
)
def test_an_invalid_header_name_names_the_variable(variable: str, field: str) -> None:
    with pytest.raises(
        ValueError, match=f"^{variable} is invalid: {field} must hold HTTP header names, got 'x bad'$"
    ) as raised:
        config_from_env({variable: "origin, x bad"})
    assert isinstance(raised.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.5", 2.5), ("10", 10.0), (" 0.25 ", 0.25), ("1e3", 1000.0), ("none", None), ("None", None), ("NONE", None)],
)
def test_export_interval_is_seconds_or_none(value: str, expected: float | None) -> None:
    assert config_from_env({OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: value}).export_interval_seconds == expected


@pytest.mark.parametrize("value", ["soon", "10s", "inf", "-inf", "nan", "null", "1,5"])
def test_export_interval_must_be_a_number_or_none(value: str) -> None:
    expected = f"must be a number of seconds or none, got {re.escape(repr(value))}$"
    with pytest.raises(ValueError, match=f"^{OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL} {expected}"):
        config_from_env({OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: value})


@pytest.mark.parametrize("value", ["0", "-1", "0.0"])
def test_export_interval_rejected_by_the_config_names_the_variable(value: str) -> None:
    message = r"^OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL is invalid: export_interval_seconds must be > 0 or None, got "
    with pytest.raises(ValueError, match=message):
        config_from_env({OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: value})


def test_every_variable_at_once() -> None:
    environ = {
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS: "true",
        OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: "^/health$",
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS: "origin,x-request-id",
        OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS: "x-tenant-secret",
        OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED: "false",
        OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: "none",
    }
    expected: dict[str, Any] = {
        "capture_payloads": True,
        "exclude_paths": ("^/health$",),
        "capture_headers": ("origin", "x-request-id"),
        "redact_headers": (*DEFAULT_REDACT_HEADERS, "x-tenant-secret"),
        "panel_enabled": False,
        "export_interval_seconds": None,
    }
    assert config_from_env(environ) == WebSocketTelemetryConfig(**expected)


def test_the_first_wrong_variable_is_reported_and_good_ones_do_not_hide_it() -> None:
    environ = {OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS: "true", OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED: "maybe"}
    with pytest.raises(ValueError, match="^OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED must be true or false"):
        config_from_env(environ)
