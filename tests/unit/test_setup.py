from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar, websocket_listener
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litestar_ws_otel import WebSocketTelemetryConfig, WebSocketTelemetryPlugin, instrument_app
from litestar_ws_otel import instrument as ws_instrument
from litestar_ws_otel import middleware as ws_middleware
from litestar_ws_otel import provider as ws_provider
from litestar_ws_otel.handle import InstrumentedApp
from litestar_ws_otel.provider import flush_on_shutdown

OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@websocket_listener("/echo")
async def echo(data: str) -> str:
    return data


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_no_endpoint_means_no_exporter() -> None:
    assert ws_provider.otlp_exporter_from_env() is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, GrpcExporter),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            HttpExporter,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            GrpcExporter,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            HttpExporter,
        ),
    ],
)
def test_protocol_picks_the_sdk_exporter(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: type[object]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = ws_provider.otlp_exporter_from_env()
    assert isinstance(exporter, expected)
    exporter.shutdown()  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "value"), [("OTEL_TRACES_EXPORTER", "none"), ("OTEL_SDK_DISABLED", "true")])
def test_exporter_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv(name, value)
    assert ws_provider.otlp_exporter_from_env() is None


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"])
def test_unknown_protocol_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv(variable, "http/json")
    with pytest.raises(ValueError, match=f"^{variable} must be 'grpc' or 'http/protobuf', got 'http/json'"):
        ws_provider.otlp_exporter_from_env()


def test_global_sdk_provider_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert ws_provider.resolve_tracer_provider() is provider


def test_new_provider_from_env_becomes_global(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "chat-service")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = ws_provider.resolve_tracer_provider()
    assert installed == [provider]
    assert provider.resource.attributes["service.name"] == "chat-service"
    assert provider.resource.attributes["deployment.environment"] == "test"
    provider.shutdown()


def test_foreign_global_provider_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    provider = ws_provider.resolve_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert installed == []
    assert "not an SDK provider" in caplog.text
    provider.shutdown()


def test_instrument_app_is_idempotent(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = memory
    app = Litestar([echo])
    first = instrument_app(app, tracer_provider=provider)
    handler = app.asgi_handler
    assert instrument_app(app, tracer_provider=provider) is first
    assert app.asgi_handler is handler
    assert app.after_exception.count(ws_middleware.record_handler_exception) == 1
    with TestClient(app) as client, client.websocket_connect("/echo") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "hi"
    assert [span.name for span in exporter.get_finished_spans()] == ["WS /echo"]


def test_capture_payloads_follows_debug(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = memory
    assert instrument_app(Litestar([echo], debug=True), tracer_provider=provider).capture_payloads is True
    assert instrument_app(Litestar([echo], debug=False), tracer_provider=provider).capture_payloads is False
    forced = WebSocketTelemetryConfig(capture_payloads=True)
    assert instrument_app(Litestar([echo]), forced, tracer_provider=provider).capture_payloads is True


def test_disabled_config_adds_nothing_but_the_handle(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """No middleware, hook, processor or panel; only the pass-through that carries the handle, so that a
    second ``instrument_app`` (or the zero-code hook) respects the choice."""
    provider, exporter = memory
    app = Litestar([echo])
    handler = app.asgi_handler
    shutdown_hooks, exception_hooks = list(app.on_shutdown), list(app.after_exception)
    handle = instrument_app(app, WebSocketTelemetryConfig(enabled=False), tracer_provider=provider)
    assert isinstance(app.asgi_handler, InstrumentedApp)
    assert app.asgi_handler.app is handler
    assert (app.on_shutdown, app.after_exception) == (shutdown_hooks, exception_hooks)
    assert instrument_app(app, tracer_provider=provider) is handle
    with TestClient(app) as client, client.websocket_connect("/echo") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "hi"
    assert exporter.get_finished_spans() == ()
    assert handle.processor.sessions() == []


def test_wrong_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="^config must be a WebSocketTelemetryConfig"):
        instrument_app(Litestar([echo]), {"max_sessions": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^tracer_provider must be an opentelemetry.sdk.trace.TracerProvider"):
        instrument_app(Litestar([echo]), tracer_provider=trace.NoOpTracerProvider())  # type: ignore[arg-type]


def test_plugin_instruments_the_app_at_startup(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory
    plugin = WebSocketTelemetryPlugin(WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=provider)
    app = Litestar([echo], plugins=[plugin])
    assert plugin.handle is None
    with TestClient(app) as client, client.websocket_connect("/echo") as socket:
        assert plugin.handle is not None
        socket.send_text("hi")
        assert socket.receive_text() == "hi"
    (span,) = exporter.get_finished_spans()
    assert span.name == "WS /echo"
    assert plugin.handle.processor.sessions()[0]["messages"][0]["payload"] == "hi"


def test_plugin_flushes_at_shutdown(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """The plugin instruments at start-up, after Litestar has collected the shutdown hooks: its own runs."""
    flushed: list[int] = []

    class RecordingProvider(TracerProvider):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            flushed.append(timeout_millis)
            return True

    plugin = WebSocketTelemetryPlugin(tracer_provider=RecordingProvider())
    with TestClient(Litestar([echo], plugins=[plugin])):
        assert flushed == []
    assert flushed == [5000]


def test_exclude_pattern_always_covers_the_panel() -> None:
    pattern = ws_instrument._exclude_pattern(WebSocketTelemetryConfig(exclude_paths=(r"^/internal/",)))
    assert pattern.search("/_ws_otel/api/live")
    assert pattern.search("/_ws_otel")
    assert pattern.search("/_debug_toolbar/otel-ws/x")
    assert pattern.search("/internal/ws")
    assert not pattern.search("/_ws_otelx")
    assert not pattern.search("/chat/internal/")


async def test_shutdown_hook_flushes_the_provider(caplog: pytest.LogCaptureFixture) -> None:
    flushed: list[int] = []

    class RecordingProvider(TracerProvider):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            flushed.append(timeout_millis)
            return True

    app = Litestar([echo], logging_config=None)
    instrument_app(app, tracer_provider=RecordingProvider())
    await app.on_shutdown[-1]()
    assert flushed == [5000]

    class BrokenProvider(TracerProvider):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            raise RuntimeError("exporter exploded")

    await flush_on_shutdown(BrokenProvider())()
    assert "could not flush spans at shutdown" in caplog.text


def test_the_version_is_the_installed_distributions_and_names_the_scope(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    from importlib.metadata import version

    import litestar_ws_otel

    assert litestar_ws_otel.__version__ == version("litestar-ws-otel")
    provider, exporter = memory
    app = Litestar([echo])
    instrument_app(app, tracer_provider=provider)
    with TestClient(app) as client, client.websocket_connect("/echo") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "hi"
    (span,) = exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
        "litestar_ws_otel",
        litestar_ws_otel.__version__,
    )


def test_an_uninstalled_source_tree_reports_a_valid_placeholder_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError, version

    from litestar_ws_otel import version as version_module

    assert version_module._installed_version() == version("litestar-ws-otel")

    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(version_module, "version", not_installed)
    assert version_module._installed_version() == "0+unknown"  # a PEP 440 version, as the scope needs
