"""The handle ``instrument_app`` returns, and how the panel and the toolbar find it from an app.

A leaf of the package: the set-up writes the handle, the panel and the toolbar read it, and none of
them needs to import another to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar
    from opentelemetry.sdk.trace import TracerProvider

    from litestar_ws_otel.config import WebSocketTelemetryConfig
    from litestar_ws_otel.processor import RecentSessionsProcessor

__all__ = ("Instrumentation", "attach_handle", "handle_of")

_STATE_KEY = "litestar_ws_otel.instrumentation"
"""Where ``app.state`` keeps the handle: Litestar apps take no weak references or new attributes."""


@dataclass(frozen=True)
class Instrumentation:
    """What ``instrument_app`` set up: read sessions in code with ``handle.processor.sessions()``."""

    config: WebSocketTelemetryConfig
    processor: RecentSessionsProcessor
    tracer_provider: TracerProvider
    capture_payloads: bool
    """The resolved setting: ``config.capture_payloads``, or ``app.debug`` when that is ``None``."""


def attach_handle(app: Litestar, handle: Instrumentation) -> None:
    """Remember ``handle`` as ``app``'s instrumentation."""
    app.state[_STATE_KEY] = handle


def handle_of(app: Litestar) -> Instrumentation | None:
    """The instrumentation of ``app``, or ``None`` when ``instrument_app`` has not run on it."""
    handle = app.state.get(_STATE_KEY)
    return handle if isinstance(handle, Instrumentation) else None
