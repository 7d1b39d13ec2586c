"""The installed distribution's version: ``litestar_ws_otel.__version__`` and the scope of spans and metrics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ("VERSION",)


def _installed_version() -> str:
    try:
        return version("litestar-ws-otel")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree that was never installed
        return "0+unknown"


VERSION: str = _installed_version()
