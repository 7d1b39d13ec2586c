"""What differs between the oldest Litestar the suite runs on (2.15) and the newest.

- Litestar 2.22 moved its OpenTelemetry plugin from ``litestar.contrib.opentelemetry`` to
  ``litestar.plugins.opentelemetry`` (the old path still works there, with a deprecation warning).
- Litestar 2.20 added ``OpenTelemetryConfig(exclude_spans=...)``.
- ``FromPath`` and ``FromQuery`` (2.22) and ``NamedDependency`` (2.23) are missing before 2.23,
  where a parameter's name alone says where its value comes from; here they stand for the bare type.
- Before 2.25, Litestar caches routing in a class-level ``lru_cache`` that keeps every app that
  routed a connection alive.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
from litestar._asgi.asgi_router import ASGIRouter
from packaging.version import Version

try:
    from litestar.plugins.opentelemetry import (
        OpenTelemetryConfig,
        OpenTelemetryInstrumentationMiddleware,
        OpenTelemetryPlugin,
    )
except ImportError:  # Litestar < 2.22
    from litestar.contrib.opentelemetry import (
        OpenTelemetryConfig,
        OpenTelemetryInstrumentationMiddleware,
        OpenTelemetryPlugin,
    )

try:
    from litestar.di import NamedDependency
    from litestar.params import FromPath, FromQuery
except ImportError:  # Litestar < 2.23

    class _ByName:
        """``FromPath[str]`` is ``str``: older Litestar finds path, query and dependency values by name."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item

    FromPath = FromQuery = NamedDependency = _ByName

__all__ = (
    "LITESTAR_VERSION",
    "FromPath",
    "FromQuery",
    "NamedDependency",
    "OpenTelemetryConfig",
    "OpenTelemetryInstrumentationMiddleware",
    "OpenTelemetryPlugin",
    "forget_routing_cache",
    "needs_exclude_spans",
    "needs_litestar",
)

LITESTAR_VERSION = Version(version("litestar"))


def needs_litestar(minimum: str, what: str) -> pytest.MarkDecorator:
    """Skip a test on a Litestar older than ``minimum``, naming ``what`` needs it."""
    return pytest.mark.skipif(Version(minimum) > LITESTAR_VERSION, reason=f"needs Litestar {minimum} or later: {what}")


needs_exclude_spans = needs_litestar("2.20", "OpenTelemetryConfig(exclude_spans=...)")


def forget_routing_cache() -> None:
    """Empty Litestar's class-level routing cache (before 2.25), so apps no one else holds can be collected."""
    cache_clear = getattr(getattr(ASGIRouter, "handle_routing", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()
