"""``LitestarWebSocketInstrumentor`` in-process: every new app is instrumented at start-up, explicit set-ups win."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from importlib.metadata import distribution, entry_points, version

import pytest
from litestar import Litestar, websocket_listener
from litestar.config.app import AppConfig
from litestar.exceptions import MissingDependencyException
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from packaging.requirements import Requirement
from packaging.version import Version

from litestar_ws_otel import WebSocketTelemetryConfig, WebSocketTelemetryPlugin, instrument_app
from litestar_ws_otel.autoinstrument import LitestarWebSocketInstrumentor
from litestar_ws_otel.env_config import OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS, OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS
from litestar_ws_otel.handle import handle_of

ORIGINAL_INIT = Litestar.__init__


@websocket_listener("/echo")
async def echo(data: str) -> str:
    return data


@pytest.fixture(autouse=True)
def no_ws_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_PYTHON_LITESTAR_WS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def instrumentor() -> Iterator[LitestarWebSocketInstrumentor]:
    """The instrumentor (a singleton, as every ``BaseInstrumentor``), uninstrumented after the test."""
    instrumentor = LitestarWebSocketInstrumentor()
    try:
        yield instrumentor
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        assert Litestar.__init__ is ORIGINAL_INIT


def session(app: Litestar) -> None:
    with TestClient(app) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"


def test_a_new_app_is_instrumented_when_it_starts(
    instrumentor: LitestarWebSocketInstrumentor,
    memory: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exporter = memory
    monkeypatch.setenv(OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS, "true")
    instrumentor.instrument(tracer_provider=provider)
    app = Litestar(route_handlers=[echo])
    assert handle_of(app) is None  # not yet: at start-up
    with TestClient(app) as client:
        handle = handle_of(app)
        assert handle is not None
        assert handle.config == WebSocketTelemetryConfig(capture_payloads=True)  # from the environment
        assert handle.tracer_provider is provider
        with client.websocket_connect("/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
    [span] = exporter.get_finished_spans()
    assert span.name == "WS /echo"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "litestar_ws_otel"
    assert [e.attributes["websocket.message.payload"] for e in span.events if e.name == "websocket.receive"] == ["hi"]


def test_apps_of_subclasses_and_from_config_are_instrumented_too(
    instrumentor: LitestarWebSocketInstrumentor, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = memory

    class MyApp(Litestar):
        pass

    instrumentor.instrument(tracer_provider=provider)
    session(MyApp(route_handlers=[echo]))
    session(Litestar.from_config(AppConfig(route_handlers=[echo])))
    assert [span.name for span in exporter.get_finished_spans()] == ["WS /echo", "WS /echo"]


def test_an_explicit_instrument_app_keeps_its_config(
    instrumentor: LitestarWebSocketInstrumentor, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = memory
    instrumentor.instrument(config=WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=provider)
    app = Litestar(route_handlers=[echo])
    mine = WebSocketTelemetryConfig(capture_payloads=False, max_sessions=7)
    explicit = instrument_app(app, mine, tracer_provider=provider)  # module level: before start-up
    with TestClient(app) as client:
        assert handle_of(app) is explicit
        assert explicit.config is mine
        with client.websocket_connect("/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
    [span] = exporter.get_finished_spans()  # one span: the hook added no second middleware
    assert not [e for e in span.events if "websocket.message.payload" in (e.attributes or {})]


def test_the_plugin_keeps_its_config(
    instrumentor: LitestarWebSocketInstrumentor, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The plugin instruments in a start-up hook added while the app is built, so before ours."""
    provider, exporter = memory
    instrumentor.instrument(tracer_provider=provider)
    mine = WebSocketTelemetryConfig(max_sessions=3)
    plugin = WebSocketTelemetryPlugin(mine, tracer_provider=provider)
    app = Litestar(route_handlers=[echo], plugins=[plugin])
    session(app)
    assert plugin.handle is not None
    assert plugin.handle.config is mine
    assert len(exporter.get_finished_spans()) == 1


def test_spans_queued_at_shutdown_are_flushed(instrumentor: LitestarWebSocketInstrumentor) -> None:
    """The shutdown hooks ``instrument_app`` adds at start-up run, although Litestar collected its hooks before."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    try:
        instrumentor.instrument(tracer_provider=provider)
        app = Litestar(route_handlers=[echo])
        with TestClient(app) as client:
            with client.websocket_connect("/echo") as ws:
                ws.send_text("hi")
                assert ws.receive_text() == "hi"
            assert exporter.get_finished_spans() == ()  # queued, far from its schedule
        assert [span.name for span in exporter.get_finished_spans()] == ["WS /echo"]
    finally:
        provider.shutdown()


def test_excluded_paths_from_the_environment_apply(
    instrumentor: LitestarWebSocketInstrumentor,
    memory: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exporter = memory
    monkeypatch.setenv(OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS, "^/echo$")
    instrumentor.instrument(tracer_provider=provider)
    app = Litestar(route_handlers=[echo])
    session(app)
    assert handle_of(app) is not None
    assert exporter.get_finished_spans() == ()


def test_uninstrument_restores_litestar_init_and_leaves_instrumented_apps_alone(
    instrumentor: LitestarWebSocketInstrumentor, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = memory
    instrumentor.instrument(tracer_provider=provider)
    assert Litestar.__init__ is not ORIGINAL_INIT
    started = Litestar(route_handlers=[echo])
    built_only = Litestar(route_handlers=[echo])
    with TestClient(started) as client:
        instrumentor.uninstrument()
        assert Litestar.__init__ is ORIGINAL_INIT
        with client.websocket_connect("/echo") as ws:  # instrumented before: stays so
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
    assert handle_of(started) is not None
    session(built_only)  # starts after uninstrument(): left alone
    session(Litestar(route_handlers=[echo]))  # built after: no hook at all
    assert handle_of(built_only) is None
    assert len(exporter.get_finished_spans()) == 1


def test_uninstrument_under_another_wrapper_makes_ours_inert(
    instrumentor: LitestarWebSocketInstrumentor, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A wrapper added on top of ours stays: restoring the original would remove it too."""
    provider, _ = memory
    instrumentor.instrument(tracer_provider=provider)
    ours = Litestar.__init__

    def theirs(self: Litestar, *args: object, **kwargs: object) -> None:
        ours(self, *args, **kwargs)

    Litestar.__init__ = theirs  # type: ignore[method-assign]
    try:
        instrumentor.uninstrument()
        assert Litestar.__init__ is theirs
        app = Litestar(route_handlers=[echo])
        assert len(app.on_startup) == 0
        assert len(app.on_shutdown) == 0
    finally:
        Litestar.__init__ = ORIGINAL_INIT  # type: ignore[method-assign]


def test_instrument_twice_wraps_once(instrumentor: LitestarWebSocketInstrumentor) -> None:
    instrumentor.instrument(config=WebSocketTelemetryConfig())
    wrapped = Litestar.__init__
    instrumentor.instrument(config=WebSocketTelemetryConfig())  # logged and ignored by BaseInstrumentor
    assert Litestar.__init__ is wrapped
    assert len(Litestar(route_handlers=[echo]).on_startup) == 1


def test_a_wrong_variable_fails_instrument_and_patches_nothing(
    instrumentor: LitestarWebSocketInstrumentor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS, "yes please")
    message = "^OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS must be true or false, got 'yes please'$"
    with pytest.raises(ValueError, match=message):
        instrumentor.instrument()
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert Litestar.__init__ is ORIGINAL_INIT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"capture_payloads": True}}, "config must be a WebSocketTelemetryConfig, got dict"),
        (
            {"tracer_provider": object()},
            "tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, got object",
        ),
    ],
)
def test_wrong_arguments_fail_instrument(
    instrumentor: LitestarWebSocketInstrumentor, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        instrumentor.instrument(**kwargs)
    assert Litestar.__init__ is ORIGINAL_INIT


def test_the_entry_point_names_the_instrumentor() -> None:
    """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` matches this name."""
    [entry_point] = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "litestar_ws_otel"]
    assert entry_point.load() is LitestarWebSocketInstrumentor


def test_the_instruments_extra_matches_and_is_satisfied() -> None:
    """The loader checks the distribution's ``instruments`` extra before it loads the entry point."""
    dist = distribution("litestar-ws-otel")
    extra = [Requirement(r) for r in dist.requires or [] if "instruments" in r]
    [declared] = [Requirement(r) for r in LitestarWebSocketInstrumentor().instrumentation_dependencies()]
    assert [(r.name, r.specifier, str(r.marker)) for r in extra] == [
        (declared.name, declared.specifier, 'extra == "instruments"')
    ]
    assert Version(version("litestar")) in declared.specifier


def test_import_without_opentelemetry_instrumentation_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.instrumentor", None)  # None: ImportError
    monkeypatch.delitem(sys.modules, "litestar_ws_otel.autoinstrument")
    with pytest.raises(MissingDependencyException, match=re.escape("pip install 'litestar-ws-otel[instrument]'")):
        importlib.import_module("litestar_ws_otel.autoinstrument")
