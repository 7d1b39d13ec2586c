"""In-process benchmarks: the app's ASGI callable driven with in-memory messages, no sockets.

This is where the precise numbers come from: CPU time of this thread per message, with every
variant run in turn inside each round, so drift of a shared machine hits all of them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.apps import build_app
from benchmarks.asgi_driver import Connection, lifespan, run_echo, run_push
from benchmarks.stats import difference, paired, summary

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from litestar.types import ASGIApp
    from opentelemetry.sdk.trace import ReadableSpan

    from benchmarks.apps import BuiltApp
    from litestar_ws_otel import RecentSessionsProcessor

__all__ = (
    "PanelSource",
    "ProcessorPanelSource",
    "close_cost",
    "memory",
    "panel_snapshot",
    "sdk_span_cost",
    "throughput",
)

_clock = time.perf_counter_ns


@dataclass(frozen=True)
class ThroughputCounts:
    echo: int
    push: int
    churn: int


def _text(size: int) -> Callable[[int], dict[str, Any]]:
    """Fresh text messages of ``size`` bytes, distinct objects as a server would decode them."""

    def make(number: int) -> dict[str, Any]:
        head = f"{number}:"
        return {"type": "websocket.receive", "text": head + "x" * (size - len(head))}

    return make


def _workloads(counts: ThroughputCounts) -> dict[str, tuple[int, Callable[[ASGIApp], Awaitable[None]]]]:
    """Per workload: units per run (messages or connections) and the run itself."""
    message = _text(100)(0)

    async def echo(app: ASGIApp) -> None:
        await run_echo(app, message, counts.echo)

    async def push(app: ASGIApp) -> None:
        await run_push(app, counts.push)

    async def churn(app: ASGIApp) -> None:
        for _ in range(counts.churn):
            await run_echo(app, message, 1)

    return {"echo": (counts.echo, echo), "push": (counts.push, push), "churn": (counts.churn, churn)}


async def _throughput(variants: Sequence[str], rounds: int, counts: ThroughputCounts) -> dict[str, Any]:
    apps = {variant: build_app(variant) for variant in variants}
    workloads = _workloads(counts)
    cpu: dict[str, dict[str, list[float]]] = {name: {variant: [] for variant in variants} for name in workloads}
    wall: dict[str, dict[str, list[float]]] = {name: {variant: [] for variant in variants} for name in workloads}
    async with contextlib.AsyncExitStack() as stack:
        for built in apps.values():
            await stack.enter_async_context(lifespan(built.app))
        warm_up = _workloads(ThroughputCounts(echo=1000, push=1000, churn=50))
        for _, run in warm_up.values():
            for built in apps.values():
                await run(built.app)
        for _ in range(rounds):
            for name, (units, run) in workloads.items():
                for variant in variants:
                    gc.collect()
                    cpu_start, wall_start = time.thread_time_ns(), _clock()
                    await run(apps[variant].app)
                    wall[name][variant].append((_clock() - wall_start) / 1e3 / units)
                    cpu[name][variant].append((time.thread_time_ns() - cpu_start) / 1e3 / units)
    results: dict[str, Any] = {}
    for name, (units, _) in workloads.items():
        bare = cpu[name]["bare"]
        per_variant: dict[str, Any] = {}
        for variant in variants:
            overhead = paired(cpu[name][variant], bare, difference)
            entry: dict[str, Any] = {
                "cpu_us": summary(cpu[name][variant]),
                "wall_us": summary(wall[name][variant]),
                "overhead_us": overhead,
            }
            if name == "echo":  # an echo is two messages through the middleware: one received, one sent
                entry["overhead_us_per_message"] = summary([value / 2 for value in overhead["values"]])
            per_variant[variant] = entry
        results[name] = {"units_per_run": units, "unit": _UNITS[name], "variants": per_variant}
    return results


async def _churn_span(variant: str) -> ReadableSpan:
    """The span one churn connection (connect, one echo, disconnect) gets from ``variant``."""
    built = build_app(variant)
    assert built.handle is not None
    exporter = InMemorySpanExporter()
    built.handle.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with lifespan(built.app):
        await run_echo(built.app, _text(100)(0), 1)
    (span,) = exporter.get_finished_spans()
    return span


def sdk_span_cost(variant: str, rounds: int, connections: int) -> dict[str, Any]:
    """CPU µs for the OpenTelemetry SDK alone to record the span ``variant`` makes of one churn connection.

    The span's own name, kind, attributes and events are replayed through a bare ``TracerProvider``
    (no processor, no session): the part of a connection's overhead that no instrumentation using
    the SDK can avoid, next to which the ``churn`` overhead can be read.
    """
    span = asyncio.run(_churn_span(variant))
    tracer = TracerProvider().get_tracer("benchmarks")
    name, kind, attributes = span.name, span.kind, dict(span.attributes or {})
    events = [(event.name, dict(event.attributes or {}), event.timestamp) for event in span.events]
    start, end = span.start_time, span.end_time

    def replay() -> None:
        replayed = tracer.start_span(name, kind=kind, attributes=attributes, start_time=start)
        for event_name, event_attributes, timestamp in events:
            replayed.add_event(event_name, event_attributes, timestamp)
        replayed.end(end_time=end)

    cpu = []
    for _ in range(rounds):
        gc.collect()
        cpu_start = time.thread_time_ns()
        for _ in range(connections):
            replay()
        cpu.append((time.thread_time_ns() - cpu_start) / 1e3 / connections)
    return {
        "variant": variant,
        "attributes": len(attributes),
        "events": len(events),
        "connections_per_round": connections,
        "cpu_us": summary(cpu),
    }


_UNITS = {"echo": "echo (100 B text received + sent)", "push": "message (100 B text sent)", "churn": "connection"}


def throughput(variants: Sequence[str], rounds: int, counts: ThroughputCounts) -> dict[str, Any]:
    """CPU µs per unit and overhead over bare (paired per round) for echo, push and connection churn."""
    return asyncio.run(_throughput(variants, rounds, counts))


async def _hold(
    app: ASGIApp, connections: int, messages: int, make: Callable[[int], dict[str, Any]]
) -> list[Connection]:
    """Open ``connections`` that each echoed ``messages`` and now wait, open, for the next one."""
    held = []
    for index in range(connections):
        base = index * messages
        connection = Connection(app, [make(base + number) for number in range(messages)], _clock)
        held.append(connection)
        connection.start()
        await connection.idle.wait()
    return held


async def _release(held: Sequence[Connection]) -> None:
    for connection in held:
        connection.close()
    await asyncio.gather(*(connection.task for connection in held if connection.task is not None))


async def _traced_per_connection(
    variant: str, connections: int, messages: int, size: int, top: int
) -> tuple[float, list[dict[str, Any]]]:
    """Python heap (tracemalloc) per open connection, and the source lines that hold most of it."""
    built = build_app(variant)
    make = _text(size)
    async with lifespan(built.app):
        await _release(await _hold(built.app, 3, messages, make))  # warm caches and lazy imports
        gc.collect()
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot()
            held = await _hold(built.app, connections, messages, make)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        await _release(held)
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    lines = [
        {
            "where": f"{_short_path(stat.traceback[0].filename)}:{stat.traceback[0].lineno}",
            "bytes_per_connection": round(stat.size_diff / connections, 1),
        }
        for stat in sorted(stats, key=lambda stat: stat.size_diff, reverse=True)[:top]
        if stat.size_diff > 0
    ]
    return total / connections, lines


def _short_path(filename: str) -> str:
    """``litestar_ws_otel/session.py`` rather than where this checkout or the venv happens to live."""
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            tail = filename.rsplit(marker, 1)[-1]
            return tail.split("/", 1)[-1] if marker == "/lib/python3" else tail
    return "benchmarks/" + filename.rsplit("/benchmarks/", 1)[-1] if "/benchmarks/" in filename else filename


def memory(
    variants: Sequence[str], rounds: int, connections: int, messages: int, size: int, top: int = 8
) -> dict[str, Any]:
    """tracemalloc KiB per open connection and over bare, each round a fresh app per variant."""
    per_conn: dict[str, list[float]] = {variant: [] for variant in variants}
    where: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for variant in variants:
            gc.collect()
            total, lines = asyncio.run(_traced_per_connection(variant, connections, messages, size, top))
            per_conn[variant].append(total / 1024)
            where[variant] = lines
    bare = per_conn["bare"]
    return {
        "connections": connections,
        "messages_per_connection": messages,
        "message_bytes": size,
        "variants": {
            variant: {
                "kib_per_connection": summary(per_conn[variant]),
                "kib_over_bare": paired(per_conn[variant], bare, difference),
                "top_lines_last_round": where[variant],
            }
            for variant in variants
        },
    }


async def _close_times(built: BuiltApp, sessions: int, messages: int, size: int) -> list[float]:
    """Milliseconds from handing the app the disconnect to the app returning, per session."""
    make = _text(size)
    times = []
    for _ in range(sessions):
        (connection,) = await _hold(built.app, 1, messages, make)
        await _release([connection])
        times.append((connection.ended_ns - connection.disconnect_ns) / 1e6)
    return times


def close_cost(
    variants: Sequence[str], rounds: int, sessions: int, messages: int, size: int
) -> tuple[dict[str, Any], dict[str, BuiltApp]]:
    """Ending a session with a full ring: each round, ``sessions`` sessions per variant, their median.

    Returns the results and the apps, whose stores are now full, for the panel snapshot.
    """
    apps = {variant: build_app(variant) for variant in variants}
    medians: dict[str, list[float]] = {variant: [] for variant in variants}

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for built in apps.values():
                await stack.enter_async_context(lifespan(built.app))
            for built in apps.values():
                await _close_times(built, 3, messages, size)
            for _ in range(rounds):
                for variant in variants:
                    gc.collect()
                    times = await _close_times(apps[variant], sessions, messages, size)
                    medians[variant].append(summary(times)["median"])

    asyncio.run(run())
    bare = medians["bare"]
    results = {
        "sessions_per_round": sessions,
        "messages_per_session": messages,
        "message_bytes": size,
        "variants": {
            variant: {
                "end_ms": summary(medians[variant]),
                "end_over_bare_ms": paired(medians[variant], bare, difference),
            }
            for variant in variants
        },
    }
    return results, apps


class PanelSource(Protocol):
    """Where the panel's session list comes from, split into fetching and encoding.

    The HTTP measurement is ``benchmarks.panel_http``: over a socket the two parts are not separable.
    """

    name: str

    def documents(self) -> Any:
        """Fetch the sessions as plain data (what the API serves, before encoding)."""

    def encode(self, documents: Any) -> bytes:
        """The response body."""


class ProcessorPanelSource:
    """The store read in process, as the panel's API handler will: ``processor.sessions()`` then JSON."""

    name = "processor.sessions() + msgspec.json.encode"

    def __init__(self, processor: RecentSessionsProcessor) -> None:
        self._processor = processor

    def documents(self) -> Any:
        return self._processor.sessions()

    def encode(self, documents: Any) -> bytes:
        return msgspec.json.encode(documents)


def panel_snapshot(source: PanelSource, rounds: int, repeats: int) -> dict[str, Any]:
    """Time fetching and encoding the full store; each round's value is the median of ``repeats`` reads."""
    fetch_ms: list[float] = []
    encode_ms: list[float] = []
    total_ms: list[float] = []
    size = sessions = messages = 0
    for _ in range(rounds):
        fetch: list[float] = []
        encode: list[float] = []
        for _ in range(repeats):
            start = _clock()
            documents = source.documents()
            middle = _clock()
            body = source.encode(documents)
            end = _clock()
            fetch.append((middle - start) / 1e6)
            encode.append((end - middle) / 1e6)
            size = len(body)
            sessions = len(documents)
            messages = sum(len(document["messages"]) for document in documents)
        fetch_ms.append(summary(fetch)["median"])
        encode_ms.append(summary(encode)["median"])
        total_ms.append(fetch_ms[-1] + encode_ms[-1])
    return {
        "source": source.name,
        "sessions": sessions,
        "messages": messages,
        "json_bytes": size,
        "fetch_ms": summary(fetch_ms),
        "encode_ms": summary(encode_ms),
        "total_ms": summary(total_ms),
    }
