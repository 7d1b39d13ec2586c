"""``WebSocketTelemetryConfig`` from ``OTEL_PYTHON_LITESTAR_WS_*`` variables, for set-ups without code.

The variables follow the contrib instrumentations' style (``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``):
booleans are ``true`` or ``false`` in any case, lists are comma-separated, and a variable that is
unset or empty keeps the config's default, as the OpenTelemetry specification asks of empty values.
A wrong value raises ``ValueError`` naming the variable, also when the config's own validation
rejects it, so a typo in a deployment fails with the name the operator actually wrote.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from litestar_ws_otel.config import DEFAULT_REDACT_HEADERS, WebSocketTelemetryConfig

__all__ = (
    "OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS",
    "OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS",
    "OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS",
    "OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL",
    "OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED",
    "OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS",
    "config_from_env",
)

OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS: Final = "OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS"
"""``true`` or ``false``: ``capture_payloads``. Unset follows ``app.debug``."""
OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: Final = "OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS"
"""Comma-separated regular expressions: ``exclude_paths``."""
OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS: Final = "OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS"
"""Comma-separated header names: ``capture_headers``, replacing the default list."""
OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS: Final = "OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS"
"""Comma-separated header names redacted *besides* the defaults: ``redact_headers``.

The variable only adds names: a deployment that lists one more secret header must not un-redact
``authorization`` or ``cookie`` by doing so. Shrinking the list takes code.
"""
OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED: Final = "OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED"
"""``true`` or ``false``: ``panel_enabled``. Unset follows ``app.debug``."""
OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: Final = "OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL"
"""Seconds (``2.5``), or ``none`` to export a session only when it closes: ``export_interval_seconds``."""

_Parse = Callable[[str, str], Any]
"""Takes the variable's name and its stripped, non-empty value; returns the field's value or raises."""


def _boolean(variable: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{variable} must be true or false, got {value!r}")
    return lowered == "true"


def _comma_list(variable: str, value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _redact_headers(variable: str, value: str) -> tuple[str, ...]:
    added = _comma_list(variable, value)
    return (*DEFAULT_REDACT_HEADERS, *(name for name in added if name.lower() not in DEFAULT_REDACT_HEADERS))


def _seconds_or_none(variable: str, value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ValueError(f"{variable} must be a number of seconds or none, got {value!r}")
    return seconds


_VARIABLES: dict[str, tuple[str, _Parse]] = {
    OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS: ("capture_payloads", _boolean),
    OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: ("exclude_paths", _comma_list),
    OTEL_PYTHON_LITESTAR_WS_CAPTURE_HEADERS: ("capture_headers", _comma_list),
    OTEL_PYTHON_LITESTAR_WS_REDACT_HEADERS: ("redact_headers", _redact_headers),
    OTEL_PYTHON_LITESTAR_WS_PANEL_ENABLED: ("panel_enabled", _boolean),
    OTEL_PYTHON_LITESTAR_WS_EXPORT_INTERVAL: ("export_interval_seconds", _seconds_or_none),
}
"""Each variable and the config field it sets."""


def config_from_env(environ: Mapping[str, str] = os.environ) -> WebSocketTelemetryConfig:
    """The config the ``OTEL_PYTHON_LITESTAR_WS_*`` variables describe; defaults for the rest.

    Args:
        environ: Where to read the variables; the process environment by default.

    Returns:
        A validated ``WebSocketTelemetryConfig``.

    Raises:
        ValueError: A variable's value is malformed or the config rejects it; the message names
            the variable.
    """
    values: dict[str, Any] = {}
    for variable, (field, parse) in _VARIABLES.items():
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        value = parse(variable, raw)
        try:
            WebSocketTelemetryConfig(**{field: value})  # checked alone, so the error is this variable's
        except ValueError as exc:
            raise ValueError(f"{variable} is invalid: {exc}") from exc
        values[field] = value
    return WebSocketTelemetryConfig(**values)
