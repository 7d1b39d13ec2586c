"""Export never hurts the app: collector outages, a stalled collector, span size, and shutdown on SIGTERM.

Every test exports through the SDK's own ``BatchSpanProcessor`` and OTLP/gRPC exporter to the real rotel
collector on loopback (or to a port where nothing listens, or to one that never answers), while a real
uvicorn server and ``websockets`` clients keep the app busy. Measured numbers are printed (``pytest -s``)
so they can be compared between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import signal
import socket
import statistics
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from litestar import Litestar
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from litestar_ws_otel import Instrumentation, WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.provider import SHUTDOWN_FLUSH_SECONDS

from ..servers import LiveServer, run_server, wait_for
from .collector import (
    HOST,
    START_TIMEOUT,
    CollectorStartError,
    RotelCollector,
    agent_env,
    build_args,
    free_ports,
    rotel_binary,
)
from .fault_apps import EXITING_LINE, build_echo_app, largest_session_span
from .subprocess_app import PROCESS_TIMEOUT, READY_PREFIX, clean_env, run_app_process

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from .receiver import OtlpGrpcReceiver, SpanDict

pytestmark = pytest.mark.export

APP_MODULE = "tests.export.fault_apps"
SPAN_NAME = "WS /echo/{room}"
GRPC_REQUEST_LIMIT = 4 * 1024 * 1024
"""Default gRPC receive limit of the OpenTelemetry Collector, Jaeger and rotel (``max_recv_msg_size_mib: 4``)."""
EXPORT_TIMEOUT = 2.0
"""Seconds the SDK exporter may spend on one batch (its default is 10); a blocked event loop would show it."""
ARRIVAL_TIMEOUT = 30.0
LARGE_EXPORT_TIMEOUT = 60.0
"""Per request, for the 60 MiB of full session spans in ``test_largest_session_span_and_batches_of_it``."""
CLIENT_TIMEOUT = 15.0
PAYLOAD = "x" * 1024
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ENV_PREFIXES_TO_DROP = ("OTEL_", "ROTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")


# --- collectors: rotel on a chosen port, and a collector that never answers -----------------------------


def _clean_env(**variables: str) -> dict[str, str]:
    return clean_env(_ENV_PREFIXES_TO_DROP, **variables)


def _rotel_env() -> dict[str, str]:
    return agent_env()


def start_rotel_on(
    grpc_port: int, receiver: OtlpGrpcReceiver, workdir: Path, extra_args: Sequence[str] = ()
) -> RotelCollector:
    """rotel-agent with its OTLP/gRPC receiver on ``grpc_port`` (the port an app already exports to).

    ``collector.start_rotel`` picks its own ports; an outage test needs the collector back on the same one.
    """
    deadline = time.monotonic() + START_TIMEOUT
    failures: list[str] = []
    for attempt in range(1, 4):
        http_port = free_ports(1)[0]
        args = [*build_args(rotel_binary(), grpc_port, http_port, receiver.endpoint, workdir), *extra_args]
        log_path = workdir / f"rotel-{grpc_port}-{time.monotonic_ns()}.txt"
        log_file = log_path.open("wb")
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_rotel_env(),
                cwd=workdir,
            )
        except BaseException:
            log_file.close()
            raise
        collector = RotelCollector(
            process, grpc_port, http_port, receiver.endpoint, args, log_path, receiver=receiver, _log_file=log_file
        )
        try:
            collector.wait_ready(max(deadline - time.monotonic(), 1.0))
        except CollectorStartError as exc:
            collector.stop()
            failures.append(f"attempt {attempt}: {exc}")
            if "Address already in use" not in collector.output() or time.monotonic() >= deadline:
                break
            continue  # only the random HTTP port can have been taken in between: pick another
        except BaseException:
            collector.stop()
            raise
        return collector
    raise CollectorStartError(f"could not start rotel-agent on port {grpc_port}:\n" + "\n\n".join(failures))


@contextlib.contextmanager
def rotel_on(
    grpc_port: int, receiver: OtlpGrpcReceiver, workdir: Path, extra_args: Sequence[str] = ()
) -> Iterator[RotelCollector]:
    collector = start_rotel_on(grpc_port, receiver, workdir, extra_args)
    try:
        yield collector
    finally:
        collector.stop()


@contextlib.contextmanager
def silent_collector() -> Iterator[int]:
    """A loopback port whose TCP handshakes complete (in the kernel's backlog) but that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(64)
        yield sock.getsockname()[1]


# --- the app side: a provider with a BatchSpanProcessor, an exporter that keeps score, live spans ----------


@dataclass
class ExportCall:
    spans: int
    started: float
    ended: float | None = None
    result: SpanExportResult | None = None


class ScoredExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC exporter, recording when each batch was handed to it and how that ended."""

    def __init__(self, endpoint: str, timeout: float = EXPORT_TIMEOUT) -> None:
        super().__init__(endpoint=endpoint, insecure=True, timeout=timeout)
        self.calls: list[ExportCall] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        call = ExportCall(len(spans), time.monotonic())
        with self._lock:
            self.calls.append(call)
        try:
            call.result = super().export(spans)
        finally:
            call.ended = time.monotonic()
        return call.result

    def snapshot(self) -> list[ExportCall]:
        with self._lock:
            return list(self.calls)

    def handed_over(self) -> int:
        return sum(call.spans for call in self.snapshot())


class LiveSpans(SpanProcessor):
    """Counts ended spans and keeps weak references, to count how many are still held in memory."""

    def __init__(self) -> None:
        self._refs: list[weakref.ref[ReadableSpan]] = []
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._refs.append(weakref.ref(span))

    @property
    def ended(self) -> int:
        with self._lock:
            return len(self._refs)

    def alive(self) -> int:
        gc.collect()
        with self._lock:
            return sum(ref() is not None for ref in self._refs)


@dataclass
class InstrumentedApp:
    app: Litestar
    handle: Instrumentation
    provider: TracerProvider
    exporter: ScoredExporter
    live: LiveSpans = field(default_factory=LiveSpans)
    errors: list[BaseException] = field(default_factory=list)
    """Exceptions that reached the app (its ``after_exception`` hook): export must never cause one."""

    async def record_error(self, exc: BaseException, scope: Any) -> None:
        self.errors.append(exc)

    def shutdown(self) -> None:
        # Exporter first: it abandons retries at once, so the provider's final flush cannot wait on a dead collector.
        self.exporter.shutdown()
        self.provider.shutdown()


@contextlib.contextmanager
def instrumented_app(
    exporter: ScoredExporter, *, max_queue_size: int = 512, max_export_batch_size: int = 64
) -> Iterator[InstrumentedApp]:
    """The echo app instrumented with payload capture on, exporting through a ``BatchSpanProcessor``."""
    provider = TracerProvider()
    processor = BatchSpanProcessor(
        exporter, max_queue_size=max_queue_size, schedule_delay_millis=50, max_export_batch_size=max_export_batch_size
    )
    provider.add_span_processor(processor)
    app = build_echo_app()
    handle = instrument_app(app, WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=provider)
    instrumented = InstrumentedApp(app, handle, provider, exporter)
    provider.add_span_processor(instrumented.live)
    app.after_exception.append(instrumented.record_error)
    try:
        yield instrumented
    finally:
        instrumented.shutdown()


# --- clients ------------------------------------------------------------------------------------------------


async def echo_session(url: str, messages: int = 3, payload: str = PAYLOAD) -> None:
    """One session: each message must come back unchanged; then a normal close."""
    async with connect(url, open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT) as ws:
        for i in range(messages):
            sent = f"{i}:{payload}"
            await ws.send(sent)
            assert await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT) == sent
        await ws.close(1000, "done")


async def echo_sessions(url: str, count: int, concurrency: int = 16) -> None:
    """``count`` sessions, ``concurrency`` at a time; any failed round trip fails the test."""
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await echo_session(url)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_client(coroutine: Any, timeout: float = 120.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@dataclass(frozen=True)
class Latency:
    label: str
    samples: tuple[float, ...]
    sessions_meanwhile: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.samples)
        return ordered[math.ceil(0.99 * len(ordered)) - 1] * 1000

    @property
    def max_ms(self) -> float:
        return max(self.samples) * 1000

    def row(self) -> str:
        return (
            f"{self.label:<22} median {self.median_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  "
            f"max {self.max_ms:7.2f} ms  ({len(self.samples)} round trips, {self.sessions_meanwhile} other sessions)"
        )


ROUND_TRIPS = 200
WARMUP_ROUND_TRIPS = 20
CHURN_CLIENTS = 2


async def measure_round_trips(server: LiveServer, label: str) -> Latency:
    """Echo round trips on one connection while other clients open and close sessions (spans to export)."""
    stop = asyncio.Event()
    churned = 0

    async def churn() -> None:
        nonlocal churned
        while not stop.is_set():
            await echo_session(server.url("/echo/churn"), messages=5)
            churned += 1

    churners = [asyncio.create_task(churn()) for _ in range(CHURN_CLIENTS)]
    try:
        samples: list[float] = []
        async with connect(server.url("/echo/measure"), open_timeout=CLIENT_TIMEOUT) as ws:
            for i in range(WARMUP_ROUND_TRIPS + ROUND_TRIPS):
                message = f"ping {i}"
                started = time.perf_counter()
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT) == message
                if i >= WARMUP_ROUND_TRIPS:
                    samples.append(time.perf_counter() - started)
        return Latency(label, tuple(samples), churned)
    finally:
        stop.set()
        await asyncio.gather(*churners)


def _print(*lines: str) -> None:
    print("\n" + "\n".join(lines), flush=True)


# --- 1. collector down at start, back, stopped mid-run, back again ----------------------------------------


def test_collector_outages_never_reach_the_app(otlp_receiver: OtlpGrpcReceiver, tmp_path: Path) -> None:
    grpc_port = free_ports(1)[0]  # nothing listens here until the collector "comes back"
    max_queue_size, batch_size = 256, 64
    rss = psutil.Process()
    exporter = ScoredExporter(f"http://{HOST}:{grpc_port}", timeout=1.0)
    with (
        instrumented_app(exporter, max_queue_size=max_queue_size, max_export_batch_size=batch_size) as ia,
        run_server(ia.app) as server,
    ):

        def sessions_arrive(room: str, count: int) -> list[SpanDict]:
            run_client(echo_sessions(server.url(f"/echo/{room}"), count, concurrency=4))
            return otlp_receiver.wait_for_spans(
                lambda s: s["attributes"].get("url.path") == f"/echo/{room}", timeout=ARRIVAL_TIMEOUT, count=count
            )

        # Down at start: two rounds of three times more sessions than the queue holds, every round trip answered.
        rounds: list[str] = []
        rss_start = rss.memory_info().rss
        for round_number in (1, 2):
            target = ia.live.ended + 3 * max_queue_size
            run_client(echo_sessions(server.url("/echo/down"), 3 * max_queue_size))
            wait_for(lambda target=target: ia.live.ended >= target, what="every session span to end")
            alive = ia.live.alive()
            # The SDK's queue is the only place spans wait: at most a full queue plus the batch being exported.
            assert alive <= max_queue_size + batch_size, f"{alive} spans still in memory"
            rounds.append(
                f"after round {round_number}: {alive} spans in memory, RSS {rss.memory_info().rss / 2**20:.1f} MiB"
            )
        assert all(call.result is not SpanExportResult.SUCCESS for call in exporter.snapshot())
        handed_over = exporter.handed_over()
        _print(
            f"collector down: {ia.live.ended} spans ended, {handed_over} handed to the exporter (all failed), "
            f"{ia.live.ended - handed_over - alive} dropped by the full queue (limit {max_queue_size}); "
            f"RSS at start {rss_start / 2**20:.1f} MiB",
            *rounds,
        )

        # The collector comes back on the same port: new sessions arrive.
        with rotel_on(grpc_port, otlp_receiver, tmp_path):
            sessions_arrive("back", 5)
        # Stopped in the middle of the run: the app keeps serving.
        run_client(echo_sessions(server.url("/echo/gone"), 50))
        # And back again.
        with rotel_on(grpc_port, otlp_receiver, tmp_path):
            spans = sessions_arrive("again", 5)

        for span in spans:
            assert span["name"] == SPAN_NAME
            assert span["status"]["code"] == "UNSET"
            assert span["attributes"]["websocket.close.code"] == 1000
        store = ia.handle.processor.sessions()
        assert store, "the recent-sessions store is empty"
        assert all(s["state"] == "closed" and s["status"] == "unset" for s in store)
        assert ia.errors == []


# --- 2. a stalled collector never blocks the event loop -----------------------------------------------------


def _stalled_during(calls: list[ExportCall], window: tuple[float, float], at_least: float) -> bool:
    """Whether some export call was in progress for ``at_least`` seconds within ``window``."""
    start, end = window
    for call in calls:
        call_end = call.ended if call.ended is not None else end
        if min(call_end, end) - max(call.started, start) >= at_least:
            return True
    return False


LATENCY_BOUND_MS = 100.0
"""p99 bound for the fault cases: far above the up-case p99 (a few ms), far below the 2 s export timeout."""


def test_stalled_or_missing_collector_never_blocks_the_event_loop(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver
) -> None:
    results: list[Latency] = []
    dead_port = free_ports(1)[0]

    def measure(label: str, endpoint: str) -> tuple[Latency, list[ExportCall], tuple[float, float]]:
        exporter = ScoredExporter(endpoint)
        with instrumented_app(exporter) as ia, run_server(ia.app) as server:
            started = time.monotonic()
            latency = run_client(measure_round_trips(server, label))
            window = (started, time.monotonic())
            results.append(latency)
            assert ia.errors == []
            return latency, exporter.snapshot(), window

    up, up_calls, _ = measure("collector up", rotel_collector.grpc_endpoint)
    otlp_receiver.wait_for_spans(lambda s: s["attributes"].get("url.path") == "/echo/measure", ARRIVAL_TIMEOUT)
    assert any(call.result is SpanExportResult.SUCCESS for call in up_calls)

    down, down_calls, _ = measure("collector down", f"http://{HOST}:{dead_port}")
    assert down_calls, "nothing was exported while the collector was down"
    assert not any(call.result is SpanExportResult.SUCCESS for call in down_calls)

    with silent_collector() as silent_port:
        stalled, stalled_calls, window = measure("collector stalled", f"http://{HOST}:{silent_port}")
    # The measurement is only meaningful if an export really hung while the round trips were timed.
    assert _stalled_during(stalled_calls, window, at_least=min(1.0, window[1] - window[0]) * 0.5), stalled_calls

    _print("WebSocket echo round trips while spans are exported:", *(r.row() for r in results))
    for latency in (down, stalled):
        assert latency.p99_ms < LATENCY_BOUND_MS, latency.row()
        assert latency.max_ms < EXPORT_TIMEOUT * 1000 / 2, latency.row()
    assert up.p99_ms < LATENCY_BOUND_MS, up.row()


# --- 3. size: the largest session span at the defaults, and batches of them ---------------------------------


def _largest_session_span() -> ReadableSpan:
    span = largest_session_span()
    limit = WebSocketTelemetryConfig().max_messages_per_session
    assert len(span.events) == limit + 2  # accept and close besides the full ring
    payloads = [e.attributes.get("websocket.message.payload") for e in span.events if e.attributes]
    assert sum(len(p.encode()) for p in payloads if isinstance(p, str)) == 1024 * limit
    return span


def _copies(span: ReadableSpan, count: int) -> list[ReadableSpan]:
    """``count`` copies of ``span`` with distinct span ids, so the receiver can tell which arrived."""
    context = span.get_span_context()
    assert context is not None
    return [
        ReadableSpan(
            name=span.name,
            context=SpanContext(context.trace_id, index + 1, is_remote=False, trace_flags=SAMPLED),
            parent=span.parent,
            resource=span.resource,
            attributes=span.attributes,
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        for index in range(count)
    ]


def test_largest_session_span_and_batches_of_it(otlp_receiver: OtlpGrpcReceiver, tmp_path: Path) -> None:
    span = _largest_session_span()
    size = encode_spans([span]).ByteSize()
    default_batch = 512  # the SDK's OTEL_BSP_MAX_EXPORT_BATCH_SIZE
    default_request = encode_spans(_copies(span, default_batch)).ByteSize()
    fitting = int(GRPC_REQUEST_LIMIT * 0.9) // size
    _print(
        f"largest session span at the defaults: {size} bytes ({size / 1024:.1f} KiB, "
        f"{size / GRPC_REQUEST_LIMIT:.1%} of the 4 MiB gRPC limit)",
        f"a default batch of {default_batch} such spans: {default_request / 2**20:.1f} MiB in one request; "
        f"{fitting} spans fit in 90% of 4 MiB",
    )
    assert size < GRPC_REQUEST_LIMIT / 16, "one session span must stay well under the gRPC request limit"
    assert default_request > GRPC_REQUEST_LIMIT  # why the batch size matters: see the next two checks

    grpc_port = free_ports(1)[0]
    # The collector must not merge requests into batches its own backend would refuse (send_batch_max_size).
    with rotel_on(grpc_port, otlp_receiver, tmp_path, ["--traces-batch-max-size", str(fitting)]):
        # The SDK's default batch size: one request over the limit. The collector refuses it, the exporter
        # retries until its timeout, and the whole batch is lost.
        exporter = OTLPSpanExporter(endpoint=f"http://{HOST}:{grpc_port}", insecure=True, timeout=1.0)
        try:
            assert exporter.export(_copies(span, default_batch)) is SpanExportResult.FAILURE
        finally:
            exporter.shutdown()

        # Batches sized to the limit: every span arrives. 60 MiB pass through the collector to a receiver
        # that decodes them in Python; on a loaded two-core machine one 3.6 MB request has taken over 10 s
        # to be acknowledged, so the deadline is generous: acceptance, not latency, is what is checked.
        copies = _copies(span, default_batch)
        provider = TracerProvider()
        batches = ScoredExporter(f"http://{HOST}:{grpc_port}", timeout=LARGE_EXPORT_TIMEOUT)
        processor = BatchSpanProcessor(
            batches, max_queue_size=default_batch, schedule_delay_millis=50, max_export_batch_size=fitting
        )
        provider.add_span_processor(processor)
        try:
            for copy in copies:
                processor.on_end(copy)
            arrived = otlp_receiver.wait_for_spans(
                lambda s: True, timeout=LARGE_EXPORT_TIMEOUT * 2, count=default_batch
            )
        finally:
            provider.shutdown()  # flushes the processor, then shuts the exporter down
    assert sorted(int(s["span_id"], 16) for s in arrived) == list(range(1, default_batch + 1))
    assert all(len(s["events"]) == len(span.events) for s in arrived)
    assert all(call.result is SpanExportResult.SUCCESS for call in batches.snapshot())
    _print(
        f"a batch of {default_batch} at the default batch size: refused by the collector, nothing arrived; "
        f"with max_export_batch_size={fitting}: {len(arrived)} of {default_batch} arrived "
        f"in {len(batches.snapshot())} requests"
    )


# --- 4. SIGTERM with sessions open: their spans end and leave before the process exits -----------------------


async def open_sessions(url: Callable[[int], str], count: int) -> list[Any]:
    sockets = []
    for index in range(count):
        ws = await connect(url(index), open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT)
        await ws.send(f"hello {index}")
        assert await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT) == f"hello {index}"
        sockets.append(ws)
    return sockets


async def close_codes_after(sockets: list[Any], action: Callable[[], None]) -> list[int | None]:
    """Run ``action`` (the SIGTERM) and return the close code each open session then receives."""
    action()
    codes: list[int | None] = []
    for ws in sockets:
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), CLIENT_TIMEOUT)
        await ws.wait_closed()
        codes.append(ws.close_code)
    return codes


def test_sigterm_ends_and_flushes_open_sessions(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    sessions = 3
    # The default schedule delay (5 s) outlives the test: only a flush at shutdown can deliver the spans.
    env = _clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=rotel_collector.grpc_endpoint, OTEL_SERVICE_NAME="ws-otel-faults")
    with run_app_process(APP_MODULE, env, tmp_path) as app:
        first = app.next_line()
        assert first is not None, app.describe()
        assert first.startswith(READY_PREFIX), app.describe()
        port = int(first.removeprefix(READY_PREFIX))

        async def scenario() -> list[int | None]:
            sockets = await open_sessions(lambda i: f"ws://{HOST}:{port}/echo/open-{i}", sessions)
            return await close_codes_after(sockets, lambda: app.process.send_signal(signal.SIGTERM))

        client_codes = run_client(scenario(), timeout=60.0)
        try:
            returncode = app.process.wait(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the app did not exit on SIGTERM\n{app.describe()}") from None
        remaining = app.stdout_lines()
        try:
            spans = otlp_receiver.wait_for_spans(
                lambda s: str(s["attributes"].get("url.path", "")).startswith("/echo/open-"),
                timeout=10.0,
                count=sessions,
            )
        except TimeoutError as exc:
            raise AssertionError(
                f"open sessions' spans were lost on SIGTERM (return code {returncode}, "
                f"stdout after READY: {remaining}): {exc}\n{app.describe()}"
            ) from None
    _print(
        f"SIGTERM with {sessions} sessions open: clients saw close codes {client_codes}; app return code "
        f"{returncode}; span close codes {[s['attributes'].get('websocket.close.code') for s in spans]}, "
        f"initiators {[s['attributes'].get('websocket.close.initiator') for s in spans]}"
    )
    assert client_codes == [1012] * sessions  # uvicorn closes open WebSockets with "service restart"
    # uvicorn shuts down gracefully, then re-raises the signal: a clean exit is 0 or "terminated by SIGTERM".
    assert returncode in (0, -signal.SIGTERM), app.describe()
    assert "Traceback" not in app.describe()
    assert EXITING_LINE in remaining or returncode == -signal.SIGTERM
    for span in spans:
        assert span["name"] == SPAN_NAME
        assert span["attributes"]["websocket.close.code"] == 1012
        assert span["status"]["code"] == "UNSET"


def test_sigterm_with_a_stalled_collector_exits_within_the_flush_bound(tmp_path: Path) -> None:
    bound = SHUTDOWN_FLUSH_SECONDS + 2.5  # the flush's own bound plus uvicorn's shutdown and interpreter exit
    with silent_collector() as silent_port:
        env = _clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{HOST}:{silent_port}")
        with run_app_process(APP_MODULE, env, tmp_path) as app:
            first = app.next_line()
            assert first is not None, app.describe()
            port = int(first.removeprefix(READY_PREFIX))

            async def scenario() -> float:
                sockets = await open_sessions(lambda i: f"ws://{HOST}:{port}/echo/stalled-{i}", 3)
                signalled = time.monotonic()
                await close_codes_after(sockets, lambda: app.process.send_signal(signal.SIGTERM))
                await asyncio.to_thread(app.process.wait, PROCESS_TIMEOUT)
                return time.monotonic() - signalled

            took = run_client(scenario(), timeout=60.0)
    _print(f"SIGTERM with the collector stalled: the app exited {took:.2f} s after the signal (bound {bound:.1f} s)")
    assert took < bound, app.describe()
