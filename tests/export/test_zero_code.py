"""``opentelemetry-instrument`` traces an app that never calls ``instrument_app``, through a real collector.

The app (``tests.export.zero_code_app``) runs in a subprocess under ``opentelemetry-instrument``, with
opentelemetry-distro setting up the SDK's providers from ``OTEL_*`` and the package's instrumentor loaded
from its ``opentelemetry_instrumentor`` entry point. Ours is the only entry point of that group in the
test environment (opentelemetry-instrumentation-asgi registers none, and only wraps apps it is handed),
so no other instrumentor needs ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from websockets.asyncio.client import connect

from .subprocess_app import READY_PREFIX, AppProcess, clean_env, run_app_process
from .zero_code_app import ENDED_PREFIX, INSTRUMENTED_PREFIX, SERVED_SPAN

if TYPE_CHECKING:
    from .collector import RotelCollector
    from .receiver import OtlpGrpcReceiver, SpanDict

pytestmark = pytest.mark.export

APP_MODULE = "tests.export.zero_code_app"
OPENTELEMETRY_INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
SPAN_NAME = "WS /chat/{room}"
MESSAGES = ("hello", "héllo wörld")
WAIT_TIMEOUT = 30.0
FORWARD_TIMEOUT = 15.0
CLIENT_TIMEOUT = 15.0
ABSENCE_WAIT = 2.0
"""How long a span that should not exist is waited for: twenty export schedules of 100 ms."""
_ENV_PREFIXES_TO_DROP = ("OTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")


def zero_code_env(collector: RotelCollector, **variables: str) -> dict[str, str]:
    """Traces over OTLP/gRPC to ``collector``; no metrics or logs exporters, which would have nowhere to go."""
    defaults = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
        "OTEL_SERVICE_NAME": "ws-otel-zero-code",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    return clean_env(_ENV_PREFIXES_TO_DROP, **(defaults | variables))


def run_instrumented(env: dict[str, str], workdir: Path) -> AbstractContextManager[AppProcess]:
    """``opentelemetry-instrument python -m tests.export.zero_code_app``, stopped on leaving the context."""
    assert OPENTELEMETRY_INSTRUMENT.exists(), f"{OPENTELEMETRY_INSTRUMENT} is missing: install the [test] extra"
    return run_app_process(APP_MODULE, env, workdir, launcher=[str(OPENTELEMETRY_INSTRUMENT)])


async def _chat(url: str) -> list[str]:
    replies: list[str] = []
    async with connect(url, open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT) as ws:
        for message in MESSAGES:
            await ws.send(message)
            replies.append(str(await ws.recv()))
        await ws.close(1000, "bye")
    return replies


def chat(port: int, room: str) -> None:
    """One session in ``room``; the app must have echoed every message."""
    replies = asyncio.run(asyncio.wait_for(_chat(f"ws://127.0.0.1:{port}/chat/{room}"), timeout=CLIENT_TIMEOUT * 2))
    assert replies == [f"{room}: {message}" for message in MESSAGES]


def start(app: AppProcess) -> tuple[int, str]:
    """The app's port and whether it was instrumented (``yes``/``no``) once its start-up hooks ran.

    uvicorn runs the lifespan start-up before it listens, so the hooks report first.
    """
    instrumented = app.wait_line(INSTRUMENTED_PREFIX)
    return int(app.wait_line(READY_PREFIX)), instrumented


def served(receiver: OtlpGrpcReceiver, room: str, app: AppProcess) -> SpanDict:
    """The app's own ``chat served`` span of ``room``: the app served the session, and spans leave it."""
    try:
        [span] = receiver.wait_for_spans(
            lambda s: s["name"] == SERVED_SPAN and s["attributes"].get("chat.room") == room, timeout=WAIT_TIMEOUT
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{app.describe()}") from None
    assert span["attributes"]["chat.echoed"] == len(MESSAGES)
    return span


def session_spans(receiver: OtlpGrpcReceiver) -> list[SpanDict]:
    return [span for span in receiver.spans() if span["name"].startswith("WS ")]


def ended_spans(app: AppProcess) -> list[str]:
    """SIGTERM, then the names of the spans the app ended, from the rest of its stdout.

    That is every span it ever ended, as long as the caller has read no ``ENDED`` line before.
    """
    app.sigterm()
    return [line.removeprefix(ENDED_PREFIX) for line in app.stdout_lines() if line.startswith(ENDED_PREFIX)]


def test_opentelemetry_instrument_traces_an_app_that_never_calls_instrument_app(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    env = zero_code_env(
        rotel_collector,
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS="true",
        OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS="^/chat/private$, ^/never$",
    )
    with run_instrumented(env, tmp_path) as app:
        port, instrumented = start(app)
        assert instrumented == "yes", app.describe()
        chat(port, "zero")
        chat(port, "private")
        served_span = served(otlp_receiver, "zero", app)
        private_served = served(otlp_receiver, "private", app)
        try:
            [span] = otlp_receiver.wait_for_spans(lambda s: s["name"] == SPAN_NAME, timeout=WAIT_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{app.describe()}") from None
        ended = ended_spans(app)

    assert span["kind"] == "SERVER"
    assert span["scope_name"] == "litestar_ws_otel"
    assert span["resource_attributes"]["service.name"] == "ws-otel-zero-code"  # the distro's provider
    assert span["attributes"]["url.path"] == "/chat/zero"
    assert span["attributes"]["websocket.messages.received"] == len(MESSAGES)
    assert span["attributes"]["websocket.close.code"] == 1000
    # OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS=true: previews, although the app is not in debug mode.
    receives = [e["attributes"] for e in span["events"] if e["name"] == "websocket.receive"]
    payloads = [attributes.get("websocket.message.payload") for attributes in receives]
    assert payloads == list(MESSAGES)
    # The handler's own span joins the session span.
    assert served_span["parent_span_id"] == span["span_id"]
    assert served_span["trace_id"] == span["trace_id"]
    # OTEL_PYTHON_LITESTAR_WS_EXCLUDED_PATHS: the private room was served, but is not a session span.
    assert private_served["parent_span_id"] is None
    assert [s["attributes"]["url.path"] for s in session_spans(otlp_receiver)] == ["/chat/zero"]
    assert sorted(ended) == sorted([SERVED_SPAN, SERVED_SPAN, SPAN_NAME])


def test_disabled_instrumentation_leaves_the_app_untraced(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=litestar_ws_otel``: the loader skips our entry point by its name."""
    env = zero_code_env(rotel_collector, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests, litestar_ws_otel")
    with run_instrumented(env, tmp_path) as app:
        port, instrumented = start(app)
        assert instrumented == "no", app.describe()
        chat(port, "dark")
        served_span = served(otlp_receiver, "dark", app)  # the app served it, and its spans are exported
        with pytest.raises(TimeoutError):
            otlp_receiver.wait_for_spans(lambda s: s["name"].startswith("WS "), timeout=ABSENCE_WAIT)
        ended = ended_spans(app)  # the process has exited: every span it ever ended is listed
    assert served_span["parent_span_id"] is None
    assert ended == [SERVED_SPAN]
    assert session_spans(otlp_receiver) == []


def test_spans_queued_at_sigterm_are_flushed(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    """The flush ``instrument_app`` adds at start-up runs at shutdown, with the distro's provider.

    A schedule delay far beyond the test leaves the span queued; uvicorn re-raises SIGTERM after its
    graceful shutdown, so the SDK's ``atexit`` flush never runs and only the lifespan shutdown can send it.
    """
    env = zero_code_env(rotel_collector, OTEL_BSP_SCHEDULE_DELAY="600000")
    with run_instrumented(env, tmp_path) as app:
        port, instrumented = start(app)
        assert instrumented == "yes", app.describe()
        chat(port, "late")
        while app.wait_line(ENDED_PREFIX) != SPAN_NAME:
            pass
        assert otlp_receiver.request_count == 0  # nothing was exported before the signal
        returncode = app.sigterm()
        try:
            otlp_receiver.wait_for_spans(lambda s: s["name"] == SPAN_NAME, timeout=FORWARD_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"the queued session span was lost on SIGTERM ({returncode}): {exc}") from None


def test_a_wrong_variable_is_reported_and_the_app_still_serves(tmp_path: Path) -> None:
    """``opentelemetry-instrument`` logs the instrumentor's error, naming the variable, and runs the app untraced."""
    env = clean_env(
        _ENV_PREFIXES_TO_DROP,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS="yes please",
    )
    with run_instrumented(env, tmp_path) as app:
        port, instrumented = start(app)
        chat(port, "typo")
        app.sigterm()
        stderr = app.stderr_path.read_text(encoding="utf-8")
    assert instrumented == "no", app.describe()
    assert "ValueError: OTEL_PYTHON_LITESTAR_WS_CAPTURE_PAYLOADS must be true or false, got 'yes please'" in stderr
