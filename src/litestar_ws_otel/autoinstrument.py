"""The set-up without code: ``opentelemetry-instrument uvicorn app:app`` instruments every Litestar app.

Install with ``pip install 'litestar-ws-otel[instrument]'``. The ``opentelemetry_instrumentor``
entry point ``litestar_ws_otel`` names :class:`LitestarWebSocketInstrumentor`, which
``opentelemetry-instrument`` loads before the app's module is imported; setting
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=litestar_ws_otel`` skips it.

Every ``Litestar`` built afterwards gets a start-up hook that calls ``instrument_app(app, config)``
with the config from the ``OTEL_PYTHON_LITESTAR_WS_*`` variables (``env_config.py``), unless the
app is instrumented by then: a module-level ``instrument_app(app, MyConfig())``, the plugin, or an
earlier start-up hook wins, and the hook adds nothing. Apps are instrumented when they start, so a
server that does not run the ASGI lifespan leaves them alone.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.exceptions import MissingDependencyException
from opentelemetry.sdk.trace import TracerProvider

try:
    # The module is marked ``# type: ignore`` as a whole, so mypy sees none of its names.
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined,unused-ignore]
except ImportError as exc:
    _error = MissingDependencyException("opentelemetry.instrumentation", "opentelemetry-instrumentation", "instrument")
    _error.detail = (
        "Package 'opentelemetry-instrumentation' is not installed but required by litestar_ws_otel.autoinstrument. "
        "Install it with `pip install 'litestar-ws-otel[instrument]'`"
    )
    raise _error from exc

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.env_config import config_from_env
from litestar_ws_otel.handle import handle_of
from litestar_ws_otel.instrument import instrument_app

if TYPE_CHECKING:
    from collections.abc import Callable, Collection


__all__ = ("INSTRUMENTS", "LitestarWebSocketInstrumentor")

INSTRUMENTS: tuple[str, ...] = ("litestar >= 2.15, < 3",)
"""The Litestar versions this instruments; the package's ``instruments`` extra says the same."""


class LitestarWebSocketInstrumentor(BaseInstrumentor):  # type: ignore[misc,unused-ignore]
    """Instrument every Litestar app the process builds, as ``instrument_app`` would, at its start-up.

    ``opentelemetry-instrument`` calls ``instrument()`` without arguments; in code, pass ``config=``
    (a ``WebSocketTelemetryConfig``, instead of the ``OTEL_PYTHON_LITESTAR_WS_*`` variables) and
    ``tracer_provider=`` (an SDK ``TracerProvider``, instead of the global one).

    ``uninstrument()`` restores ``Litestar.__init__``, and apps that start afterwards are left alone.
    Apps already instrumented stay so: their middleware is part of their handler chain and cannot
    be taken out again.
    """

    _patch: _Patch | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        config = kwargs.get("config")
        if config is None:
            config = config_from_env()  # read once, so a wrong value fails here, before any app exists
        elif not isinstance(config, WebSocketTelemetryConfig):
            raise ValueError(f"config must be a WebSocketTelemetryConfig, got {type(config).__name__}")
        tracer_provider = kwargs.get("tracer_provider")
        if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
            raise ValueError(
                "tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, "
                f"got {type(tracer_provider).__name__}"
            )
        patch = _Patch(Litestar.__init__, config, tracer_provider)
        Litestar.__init__ = patch.wrapper  # type: ignore[method-assign]
        self._patch = patch

    def _uninstrument(self, **kwargs: Any) -> None:
        patch, self._patch = self._patch, None
        if patch is None:
            return
        patch.active = False  # inert even if another wrapper now sits on top of ours
        if Litestar.__dict__.get("__init__") is patch.wrapper:
            Litestar.__init__ = patch.original  # type: ignore[method-assign]


class _Patch:
    """One ``instrument()``: the wrapped ``Litestar.__init__`` and what new apps are instrumented with."""

    __slots__ = ("active", "config", "original", "tracer_provider", "wrapper")

    def __init__(
        self, original: Callable[..., None], config: WebSocketTelemetryConfig, tracer_provider: TracerProvider | None
    ) -> None:
        self.original = original
        self.config = config
        self.tracer_provider = tracer_provider
        self.active = True

        @functools.wraps(original)
        def __init__(app: Litestar, *args: Any, **kwargs: Any) -> None:
            original(app, *args, **kwargs)
            if self.active:
                hooks = _StartupHooks(self)
                app.on_startup.append(hooks.startup)
                app.on_shutdown.append(hooks.shutdown)

        self.wrapper: Callable[..., None] = __init__


class _StartupHooks:
    """One app's start-up and shutdown hooks.

    Litestar collects the shutdown hooks when the lifespan begins, before the start-up hooks run, so
    the one ``instrument_app`` adds at start-up would not run; ``shutdown``, added with the app, runs
    the handle's shutdown instead (which runs once, whoever calls it).
    """

    __slots__ = ("_patch",)

    def __init__(self, patch: _Patch) -> None:
        self._patch = patch

    def startup(self, app: Litestar) -> None:
        if not self._patch.active or handle_of(app) is not None:
            return  # uninstrumented since, or instrumented explicitly: that config wins
        instrument_app(app, self._patch.config, tracer_provider=self._patch.tracer_provider)

    async def shutdown(self, app: Litestar) -> None:
        handle = handle_of(app)
        if handle is not None:
            await handle.shutdown()
