"""Session spans leave over OTLP (gRPC and HTTP/protobuf) through a real collector (rotel), as the span schema says.

In-process: a Litestar app served by uvicorn, driven by a ``websockets`` client, exporting through an SDK
``BatchSpanProcessor``. Zero-config: the app runs in a subprocess with only ``OTEL_*`` variables and
``instrument_app(app)``, so the provider, exporter, protocol and resource all come from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError
from websockets.typing import Origin

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.provider import otlp_exporter_from_env

from ..servers import run_server
from .apps import ENDED_PREFIX, ERROR_MESSAGE, ERROR_ROOM, build_chat_app
from .subprocess_app import PROCESS_TIMEOUT, READY_PREFIX, AppProcess, clean_env, run_app_process

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from .collector import RotelCollector
    from .receiver import OtlpGrpcReceiver, SpanDict

pytestmark = pytest.mark.export

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_MODULE = "tests.export.apps"
EXAMPLE_SPAN_PATH = PROJECT_ROOT / "test-artifacts" / "example-span.json"

WAIT_TIMEOUT = 30.0
FORWARD_TIMEOUT = 15.0
CLIENT_TIMEOUT = 15.0
SPAN_NAME = "WS /chat/{room}"
ORIGIN = "http://example.test"
SECRET = "s3cret-value"
QUERY = f"token={SECRET}&lang=fi"
NON_ASCII = "héllo wörld ✓ 日本語 🎉"
MESSAGES: tuple[str | bytes, ...] = ("hello", NON_ASCII, b"\x00\x01\xfe\xff")
LONG_TEXT = "é" * 600  # 1200 UTF-8 bytes: over the 1024-byte preview limit, cut between characters
ZERO_CONFIG_ENV = {
    "OTEL_SERVICE_NAME": "ws-otel-test",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    "OTEL_BSP_SCHEDULE_DELAY": "100",
}
# Variables the subprocess must not inherit: ours are set explicitly, and proxies must not apply to loopback.
_ENV_PREFIXES_TO_DROP = ("OTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")


def _size(message: str | bytes) -> int:
    return len(message.encode("utf-8")) if isinstance(message, str) else len(message)


def _reply(room: str, message: str | bytes) -> str | bytes:
    return f"{room}: {message}" if isinstance(message, str) else message[::-1]


def _endpoint(collector: RotelCollector, protocol: str) -> str:
    """Base endpoint for ``OTEL_EXPORTER_OTLP_ENDPOINT``; the HTTP exporter appends ``/v1/traces`` itself."""
    return collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint


def _by_path(path: str) -> Any:
    return lambda span: span["attributes"].get("url.path") == path


def assert_event_times(span: SpanDict) -> None:
    """Every event strictly inside the span, and the events in non-decreasing time order."""
    start, end = span["start_time_unix_nano"], span["end_time_unix_nano"]
    times = [event["time_unix_nano"] for event in span["events"]]
    assert start < end
    assert all(start < t < end for t in times), (start, times, end)
    assert times == sorted(times), times


def write_example(span: SpanDict) -> str:
    text = json.dumps(span, indent=2, sort_keys=True, ensure_ascii=False)
    EXAMPLE_SPAN_PATH.parent.mkdir(parents=True, exist_ok=True)
    EXAMPLE_SPAN_PATH.write_text(text + "\n", encoding="utf-8")
    return text


# --- clients ---------------------------------------------------------------------------------------


async def chat_session(url: str) -> list[str | bytes]:
    """Send each message and wait for its echo (so events interleave deterministically), then close 1000."""
    replies: list[str | bytes] = []
    async with connect(url, origin=Origin(ORIGIN), open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT) as ws:
        for message in MESSAGES:
            await ws.send(message)
            replies.append(await ws.recv())
        await ws.close(1000, "bye")
    return replies


async def failing_session(url: str) -> tuple[int, str]:
    """One message to a handler that raises; returns the close code and reason the server sent."""
    async with connect(url, open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT) as ws:
        await ws.send("trigger")
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def long_session(url: str) -> None:
    async with connect(url, open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT) as ws:
        await ws.send(LONG_TEXT)
        await ws.recv()
        await ws.close(1000, "")


def run_client(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, timeout=CLIENT_TIMEOUT * 2))


# --- in-process: SDK provider with a BatchSpanProcessor -> rotel -> receiver --------------------------


class EndedSpans(SpanProcessor):
    """Remembers ended spans; added after the batch processor, so an ended span is already queued there."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paths: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            self._paths.append(str((span.attributes or {}).get("url.path")))
            self._cond.notify_all()

    def wait(self, paths: set[str], timeout: float = WAIT_TIMEOUT) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: paths <= set(self._paths), timeout=timeout):
                raise AssertionError(f"spans for {sorted(paths)} did not end; ended: {self._paths}")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # the SDK's base class returns None in older releases (1.27), failing the provider's flush


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_session_spans_arrive_as_designed(
    protocol: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver
) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "ws-otel-export-test"}))
    provider.add_span_processor(BatchSpanProcessor(rotel_collector.exporter(protocol)))
    ended = EndedSpans()
    provider.add_span_processor(ended)
    try:
        app = build_chat_app()
        instrument_app(app, WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=provider)
        with run_server(app) as server:
            replies = run_client(chat_session(server.url(f"/chat/lobby?{QUERY}")))
            close_code, close_reason = run_client(failing_session(server.url(f"/chat/{ERROR_ROOM}")))
            run_client(long_session(server.url("/chat/long")))
            ended.wait({"/chat/lobby", f"/chat/{ERROR_ROOM}", "/chat/long"})
            port = server.port
        assert provider.force_flush(timeout_millis=int(WAIT_TIMEOUT * 1000))
    finally:
        provider.shutdown()
    assert replies == [_reply("lobby", m) for m in MESSAGES]

    [span] = otlp_receiver.wait_for_spans(_by_path("/chat/lobby"), timeout=WAIT_TIMEOUT)
    [error_span] = otlp_receiver.wait_for_spans(_by_path(f"/chat/{ERROR_ROOM}"), timeout=WAIT_TIMEOUT)
    [long_span] = otlp_receiver.wait_for_spans(_by_path("/chat/long"), timeout=WAIT_TIMEOUT)
    text = json.dumps(span, indent=2, sort_keys=True, ensure_ascii=False)
    print(f"\n--- received session span ({protocol}) ---\n{text}")
    if protocol == "grpc":
        write_example(span)

    # The normal session.
    assert span["name"] == SPAN_NAME
    assert span["kind"] == "SERVER"
    assert span["parent_span_id"] is None
    assert span["scope_name"] == "litestar_ws_otel"
    assert span["resource_attributes"]["service.name"] == "ws-otel-export-test"
    assert span["status"] == {"code": "UNSET", "message": ""}
    assert span["dropped_attributes_count"] == 0
    assert span["dropped_events_count"] == 0
    attributes = span["attributes"]
    received_bytes = sum(_size(m) for m in MESSAGES)
    sent_bytes = sum(_size(_reply("lobby", m)) for m in MESSAGES)
    assert {k: v for k, v in attributes.items() if k not in {"client.port", "user_agent.original"}} == {
        "http.request.method": "GET",
        "url.scheme": "ws",
        "url.path": "/chat/lobby",
        "url.query": "token=REDACTED&lang=fi",
        "http.route": "/chat/{room}",
        "server.address": "127.0.0.1",
        "server.port": port,
        "client.address": "127.0.0.1",
        "network.protocol.name": "websocket",
        "network.protocol.version": "13",
        "http.request.header.origin": [ORIGIN],
        "http.request.header.sec-websocket-extensions": [attributes["http.request.header.sec-websocket-extensions"][0]],
        "http.response.status_code": 101,
        "websocket.messages.received": len(MESSAGES),
        "websocket.messages.sent": len(MESSAGES),
        "websocket.bytes.received": received_bytes,
        "websocket.bytes.sent": sent_bytes,
        "websocket.events.dropped": 0,
        "websocket.close.code": 1000,
        "websocket.close.reason": "bye",
        "websocket.close.initiator": "client",
    }
    assert isinstance(attributes["client.port"], int)
    assert attributes["client.port"] > 0
    assert attributes["user_agent.original"].startswith("Python/")
    assert isinstance(attributes["http.request.header.sec-websocket-extensions"][0], str)
    assert SECRET not in json.dumps(span)

    events = span["events"]
    assert [e["name"] for e in events] == [
        "websocket.accept",
        *["websocket.receive", "websocket.send"] * len(MESSAGES),
        "websocket.close",
    ]
    assert_event_times(span)
    assert events[0]["attributes"] == {}
    assert events[-1]["attributes"] == {
        "websocket.close.code": 1000,
        "websocket.close.reason": "bye",
        "websocket.close.initiator": "client",
    }
    for index, message in enumerate(MESSAGES):
        for event, payload in ((events[1 + 2 * index], message), (events[2 + 2 * index], _reply("lobby", message))):
            expected: dict[str, Any] = {
                "websocket.message.type": "text" if isinstance(payload, str) else "binary",
                "websocket.message.id": index + 1,  # per direction
                "websocket.message.size": _size(payload),
            }
            if isinstance(payload, str):  # binary previews are off by default: no payload attribute at all
                expected |= {"websocket.message.payload": payload, "websocket.message.truncated": False}
            assert event["attributes"] == expected, event

    # The handler that raised.
    assert error_span["name"] == SPAN_NAME
    assert error_span["kind"] == "SERVER"
    assert error_span["status"]["code"] == "ERROR"
    assert ERROR_MESSAGE in error_span["status"]["message"]
    error_attributes = error_span["attributes"]
    assert error_attributes["error.type"] == "RuntimeError"
    assert error_attributes["http.route"] == "/chat/{room}"
    assert error_attributes["http.response.status_code"] == 101
    assert error_attributes["websocket.messages.received"] == 1
    assert error_attributes["websocket.messages.sent"] == 0
    assert error_attributes["websocket.close.initiator"] == "server"
    assert error_attributes["websocket.close.code"] == close_code
    assert error_attributes["websocket.close.reason"] == close_reason
    assert [e["name"] for e in error_span["events"]] == [
        "websocket.accept",
        "websocket.receive",
        "exception",
        "websocket.close",
    ]
    assert_event_times(error_span)
    exception = error_span["events"][2]["attributes"]
    assert exception["exception.type"] == "RuntimeError"
    assert exception["exception.message"] == ERROR_MESSAGE
    assert "Traceback" in exception["exception.stacktrace"]
    assert "RuntimeError: " + ERROR_MESSAGE in exception["exception.stacktrace"]

    # A preview cut on a UTF-8 character boundary survives the trip intact.
    [receive] = [e for e in long_span["events"] if e["name"] == "websocket.receive"]
    assert receive["attributes"]["websocket.message.size"] == len(LONG_TEXT.encode("utf-8"))
    assert receive["attributes"]["websocket.message.payload"] == "é" * 512
    assert receive["attributes"]["websocket.message.truncated"] is True
    assert_event_times(long_span)


# --- zero config: instrument_app(app) in a subprocess, everything from OTEL_* ------------------------


def zero_config_env(collector: RotelCollector, protocol: str, **overrides: str) -> dict[str, str]:
    """The app's environment: ``ZERO_CONFIG_ENV`` with ``overrides``, exporting to ``collector`` over ``protocol``."""
    return clean_env(
        _ENV_PREFIXES_TO_DROP,
        OTEL_EXPORTER_OTLP_ENDPOINT=_endpoint(collector, protocol),
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        **(ZERO_CONFIG_ENV | overrides),
    )


def serve_one_session(app: AppProcess, path: str) -> None:
    """Run one chat session against the app and wait until its span has ended (and is queued for export)."""
    port = int(app.wait_line(READY_PREFIX))
    replies = run_client(chat_session(f"ws://127.0.0.1:{port}{path}"))
    assert replies == [_reply(path.rsplit("/", 1)[1], m) for m in MESSAGES]
    assert app.wait_line(ENDED_PREFIX) == SPAN_NAME


def wait_then_sigterm(app: AppProcess, receiver: OtlpGrpcReceiver, path: str) -> SpanDict:
    """The span as exported on the 100 ms schedule, then SIGTERM.

    Waiting first keeps the test deterministic: whether a span still queued at SIGTERM is flushed is
    ``test_zero_config_flushes_queued_spans_on_sigterm``'s question.
    """
    try:
        [span] = receiver.wait_for_spans(_by_path(path), timeout=WAIT_TIMEOUT)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{app.describe()}") from None
    app.sigterm()
    return span


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_zero_config_exports_with_resource_from_env(
    protocol: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    env = zero_config_env(rotel_collector, protocol)
    with run_app_process(APP_MODULE, env, tmp_path) as app:
        serve_one_session(app, "/chat/zero")
        span = wait_then_sigterm(app, otlp_receiver, "/chat/zero")
    assert span["name"] == SPAN_NAME
    assert span["kind"] == "SERVER"
    assert span["scope_name"] == "litestar_ws_otel"
    assert span["resource_attributes"]["service.name"] == "ws-otel-test"
    assert span["resource_attributes"]["deployment.environment"] == "test"
    assert span["attributes"]["websocket.messages.received"] == len(MESSAGES)
    assert span["attributes"]["websocket.close.code"] == 1000
    # Not in debug mode and capture_payloads left at None: no payload previews.
    receives = [e for e in span["events"] if e["name"] == "websocket.receive"]
    assert len(receives) == len(MESSAGES)
    assert all("websocket.message.payload" not in e["attributes"] for e in receives)
    assert_event_times(span)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_zero_config_flushes_queued_spans_on_sigterm(
    protocol: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    """With a schedule delay far beyond the test, only a flush at shutdown can deliver the span.

    uvicorn handles SIGTERM gracefully (lifespan shutdown runs), then re-raises it with the default
    handler, so the process dies by the signal and the SDK's ``atexit`` shutdown never runs.
    """
    env = zero_config_env(rotel_collector, protocol, OTEL_BSP_SCHEDULE_DELAY="600000")
    with run_app_process(APP_MODULE, env, tmp_path) as app:
        serve_one_session(app, "/chat/flush")
        assert otlp_receiver.request_count == 0  # nothing was exported before the signal
        returncode = app.sigterm()
        try:
            # The app has exited: only the collector's forwarding (50 ms batches) is left to wait for.
            otlp_receiver.wait_for_spans(_by_path("/chat/flush"), timeout=FORWARD_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(
                f"the span queued in the BatchSpanProcessor was lost on SIGTERM (app return code {returncode}): "
                f"{exc}\n{app.describe()}"
            ) from None


@pytest.mark.parametrize(
    ("generic", "traces"),
    [("grpc", "http/protobuf"), ("http/protobuf", "grpc")],
    ids=["traces-http-over-grpc", "traces-grpc-over-http"],
)
def test_traces_protocol_overrides_generic_protocol(
    generic: str, traces: str, rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    """The endpoint speaks only ``traces``' protocol, so the span arrives only if that variable wins."""
    env = clean_env(
        _ENV_PREFIXES_TO_DROP,
        OTEL_EXPORTER_OTLP_ENDPOINT=_endpoint(rotel_collector, traces),
        OTEL_EXPORTER_OTLP_PROTOCOL=generic,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=traces,
        **ZERO_CONFIG_ENV,
    )
    with run_app_process(APP_MODULE, env, tmp_path) as app:
        serve_one_session(app, "/chat/override")
        span = wait_then_sigterm(app, otlp_receiver, "/chat/override")
    assert span["resource_attributes"]["service.name"] == "ws-otel-test"


@pytest.mark.parametrize("variable", _PROTOCOL_VARIABLES)
def test_instrument_app_rejects_invalid_protocol(variable: str, tmp_path: Path) -> None:
    """``instrument_app(app)`` itself fails at start-up, naming the variable (a subprocess: no global provider here)."""
    env = clean_env(_ENV_PREFIXES_TO_DROP, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1", **{variable: "http/json"})
    with run_app_process(APP_MODULE, env, tmp_path) as app:
        returncode = app.process.wait(timeout=PROCESS_TIMEOUT)
        stderr = app.stderr_path.read_text(encoding="utf-8")
    assert returncode != 0, app.describe()
    assert f"ValueError: {variable} must be 'grpc' or 'http/protobuf', got 'http/json'" in stderr, stderr
    assert "instrument_app" in stderr


# --- in-process: otlp_exporter_from_env() only (never touches the global tracer provider) -------------


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    return monkeypatch


@pytest.mark.parametrize(
    ("generic", "traces", "expected"),
    [
        (None, None, GrpcSpanExporter),
        ("http/protobuf", None, HttpSpanExporter),
        ("grpc", "http/protobuf", HttpSpanExporter),
        ("http/protobuf", "grpc", GrpcSpanExporter),
        ("http/json", "grpc", GrpcSpanExporter),  # the traces variable wins; the generic one is not read
    ],
)
def test_exporter_protocol_from_env(
    generic: str | None, traces: str | None, expected: type, clean_otel_env: pytest.MonkeyPatch
) -> None:
    for variable, value in zip(_PROTOCOL_VARIABLES, (generic, traces), strict=True):
        if value is not None:
            clean_otel_env.setenv(variable, value)
    exporter = otlp_exporter_from_env()
    try:
        assert type(exporter) is expected
    finally:
        if exporter is not None:
            exporter.shutdown()


@pytest.mark.parametrize("variable", _PROTOCOL_VARIABLES)
def test_invalid_protocol_names_the_variable(variable: str, clean_otel_env: pytest.MonkeyPatch) -> None:
    clean_otel_env.setenv(variable, "http/json")
    with pytest.raises(ValueError, match=f"^{variable} must be 'grpc' or 'http/protobuf', got 'http/json'$"):
        otlp_exporter_from_env()
