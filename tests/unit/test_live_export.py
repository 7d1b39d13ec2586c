"""Incremental export of open sessions: what leaves, when, and that every message is accounted for once."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from litestar_ws_otel.live_export import LiveExport
from litestar_ws_otel.session import PreviewPolicy, Session
from tests.apps import echo

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.sdk.trace import ReadableSpan

POLICY = PreviewPolicy(
    capture_payloads=True, max_payload_bytes=64, capture_binary_preview=False, binary_preview_bytes=4
)
SECOND = 1_000_000_000


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def open_session(provider: TracerProvider, max_messages: int = 10) -> tuple[Session, object]:
    session = Session(policy=POLICY, max_messages=max_messages, started_ns=0)
    span = provider.get_tracer("t").start_span("WS /chat/{room}", start_time=0)
    return session, span


def ids(span: ReadableSpan, direction: str) -> list[int]:
    name = "websocket.receive" if direction == "received" else "websocket.send"
    return [event.attributes["websocket.message.id"] for event in span.events if event.name == name]  # type: ignore[index]


def test_new_records_leave_once_per_interval_as_a_child_span(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session, span = open_session(provider)
    live.track(session, span)  # type: ignore[arg-type]
    for text in ("a", "b", "c"):
        session.on_message("received", text)
    session.on_message("sent", "ok")
    assert live.export_due(now_ns=9 * SECOND) == 0  # not yet an interval since the session started
    assert live.export_due(now_ns=10 * SECOND) == 1
    (child,) = exporter.get_finished_spans()
    assert child.name == "WS /chat/{room} messages"
    assert child.kind is SpanKind.INTERNAL
    assert child.parent is not None
    assert child.parent.span_id == span.get_span_context().span_id  # type: ignore[attr-defined]
    assert child.context.trace_id == span.get_span_context().trace_id  # type: ignore[attr-defined]
    assert (ids(child, "received"), ids(child, "sent")) == ([1, 2, 3], [1])
    assert child.attributes is not None
    assert child.attributes["websocket.messages.received"] == 3
    assert child.attributes["websocket.events.dropped"] == 0
    assert session.exported_ns == 10 * SECOND
    live.stop()


def test_a_quiet_session_exports_nothing_new(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=1)
    session, span = open_session(provider)
    live.track(session, span)  # type: ignore[arg-type]
    assert live.export_due(now_ns=5 * SECOND) == 0  # no message at all
    session.on_message("received", "x")
    assert live.export_due(now_ns=6 * SECOND) == 1
    assert live.export_due(now_ns=60 * SECOND) == 0  # nothing since: looked at, and due again at 61 s
    session.on_message("sent", "y")
    assert live.export_due(now_ns=60 * SECOND + SECOND // 2) == 0  # one look per interval
    assert live.next_due_ns(60 * SECOND + SECOND // 2) == 61 * SECOND
    assert live.export_due(now_ns=61 * SECOND) == 1
    assert [ids(s, "received") + ids(s, "sent") for s in exporter.get_finished_spans()] == [[1], [1]]
    live.stop()


def test_every_message_is_exported_once_or_counted_as_dropped(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Across the children and the close, events + dropped = messages, per direction, no id twice."""
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=1)
    session, span = open_session(provider, max_messages=10)
    pending = live.track(session, span)  # type: ignore[arg-type]
    sent_per_interval = [3, 25, 0, 10, 4]  # 25 overflows a ring of 10
    for interval, count in enumerate(sent_per_interval, start=1):
        for _ in range(count):
            session.on_message("received", "m")
            session.on_message("sent", "r")
        live.export_due(now_ns=interval * 10 * SECOND)
    for _ in range(7):
        session.on_message("received", "late")
    live.untrack(pending)
    records, dropped = pending.close()
    assert records is not None
    assert dropped is not None
    children = exporter.get_finished_spans()
    exported = {direction: [i for s in children for i in ids(s, direction)] for direction in ("received", "sent")}
    exported["received"] += [r.message_id for r in records if r.direction == "received"]
    exported["sent"] += [r.message_id for r in records if r.direction == "sent"]
    total_dropped = sum(s.attributes["websocket.events.dropped"] for s in children) + dropped  # type: ignore[index,misc]
    for direction in ("received", "sent"):
        assert len(exported[direction]) == len(set(exported[direction]))
        assert exported[direction] == sorted(exported[direction])
    assert len(exported["received"]) + len(exported["sent"]) + total_dropped == session.written
    assert session.written == session.messages_received + session.messages_sent == 2 * 42 + 7
    assert max(exported["received"]) == session.messages_received  # the newest message is never lost
    assert pending.take() == ([], 0)  # closed: the session span has the rest
    live.stop()


def test_a_session_that_never_exported_closes_as_one_span(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session, span = open_session(provider)
    pending = live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "x")
    live.untrack(pending)
    assert pending.close() == (None, None)  # the session span carries everything, as without live export
    assert live.export_due(now_ns=100 * SECOND) == 0
    live.stop()


def test_the_thread_sleeps_until_the_next_session_is_due(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    assert live.next_due_ns(5 * SECOND) == 15 * SECOND  # no session: an interval away
    later, sooner = open_session(provider), open_session(provider)
    later[0].started_ns, sooner[0].started_ns = 4 * SECOND, 2 * SECOND
    for record, span in (later, sooner):
        live.track(record, span)  # type: ignore[arg-type]
    assert live.next_due_ns(5 * SECOND) == 12 * SECOND  # the earliest session's turn
    live.export_due(now_ns=12 * SECOND)
    assert live.next_due_ns(12 * SECOND) == 14 * SECOND
    live.stop()


def test_the_thread_exports_on_its_own_and_ends_with_its_exporter(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=0.05)
    session = Session(policy=POLICY, max_messages=10)
    span = provider.get_tracer("t").start_span("WS /x")
    live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "x")
    thread = live._thread
    assert thread is not None
    deadline = threading.Event()
    for _ in range(200):
        if exporter.get_finished_spans():
            break
        deadline.wait(0.05)
    assert [s.name for s in exporter.get_finished_spans()] == ["WS /x messages"]
    exporter_ref = weakref.ref(live)
    del live
    gc.collect()
    assert exporter_ref() is None
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_provider_with_too_few_events_per_span_is_refused() -> None:
    from litestar import Litestar

    provider = TracerProvider(span_limits=SpanLimits(max_events=50))
    app = Litestar(route_handlers=[echo])
    with pytest.raises(
        ValueError, match=r"max_messages_per_session=100 needs 103 .* at most 50 \(SpanLimits\.max_events"
    ):
        instrument_app(app, tracer_provider=provider)
    assert instrument_app(app, WebSocketTelemetryConfig(max_messages_per_session=47), tracer_provider=provider)
    provider.shutdown()


# --- edges of the export ------------------------------------------------------------------------


def export_threads() -> set[threading.Thread]:
    """By the name docs/production.md tells users to look for in a profiler."""
    return {thread for thread in threading.enumerate() if thread.name == "litestar-ws-otel-export"}


def test_one_daemon_thread_per_app_and_none_after_stop(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = traced
    before = export_threads()
    live = LiveExport(provider.get_tracer("t"), interval_seconds=3600)
    for _ in range(3):
        live.track(*open_session(provider))  # type: ignore[arg-type]
    (thread,) = export_threads() - before
    assert thread.daemon  # never keeps the process alive
    live.stop()
    assert not thread.is_alive()
    live.track(*open_session(provider))  # type: ignore[arg-type]
    assert export_threads() - before == set()


def test_stop_exports_open_sessions_that_are_not_due_yet(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    import time

    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=3600)
    session, span = open_session(provider)
    session.started_ns = time.time_ns()  # due in an hour
    live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "x")
    live.stop()
    (child,) = exporter.get_finished_spans()
    assert ids(child, "received") == [1]


def test_export_due_counts_every_span_it_made(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    for _ in range(3):
        session, span = open_session(provider)
        live.track(session, span)  # type: ignore[arg-type]
        session.on_message("sent", "x")
    assert live.export_due(now_ns=10 * SECOND) == 3
    assert len(exporter.get_finished_spans()) == 3
    live.stop()


def test_an_untracked_session_exports_nothing_more(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session, span = open_session(provider)
    pending = live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "x")
    live.untrack(pending)
    assert live.export_due(now_ns=10 * SECOND, everything=True) == 0
    live.stop()
    assert exporter.get_finished_spans() == ()


def test_after_close_nothing_leaves_early_even_if_still_tracked(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The connection's last ``take`` wins a race with the thread: the session span carries the rest."""
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session, span = open_session(provider)
    pending = live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "a")
    assert live.export_due(now_ns=10 * SECOND) == 1
    session.on_message("received", "b")
    records, dropped = pending.close()
    assert ([r.payload for r in records or []], dropped) == (["b"], 0)
    session.on_message("received", "c")
    assert pending.take() == ([], 0)
    assert live.export_due(now_ns=30 * SECOND, everything=True) == 0
    assert len(exporter.get_finished_spans()) == 1
    live.stop()


def test_a_messages_span_spans_its_messages_and_the_export_time(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """It starts at its first message and ends at the export, or at its last message if that came later."""
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session, span = open_session(provider)
    live.track(session, span)  # type: ignore[arg-type]
    session.on_message("received", "a")
    session.on_message("received", "b")
    first, last = (r.time_ns for r in session.records())
    assert live.export_due(now_ns=last + 5 * SECOND, everything=True) == 1
    session.on_message("received", "c")
    (late,) = session.records_since(2)[0]
    assert live.export_due(now_ns=late.time_ns - 1, everything=True) == 1  # a clock read before the message
    early, lagging = exporter.get_finished_spans()
    assert (early.start_time, early.end_time) == (first, last + 5 * SECOND)
    assert (lagging.start_time, lagging.end_time) == (late.time_ns - 1, late.time_ns)
    live.stop()


def test_the_messages_span_of_a_span_without_a_name_is_ws_messages() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    session = Session(policy=POLICY, max_messages=4, started_ns=0)
    unsampled = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)))
    live.track(session, unsampled)
    session.on_message("received", "x")
    assert live.export_due(now_ns=10 * SECOND) == 1
    (child,) = exporter.get_finished_spans()
    assert child.name == "WS messages"
    live.stop()
    provider.shutdown()


def test_a_failed_export_is_reported_once_with_its_traceback(
    traced: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenTracer:
        def start_span(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("tracer exploded")

    provider, _ = traced
    live = LiveExport(BrokenTracer(), interval_seconds=10)  # type: ignore[arg-type]
    for _ in range(2):
        session, span = open_session(provider)
        live.track(session, span)  # type: ignore[arg-type]
        session.on_message("received", "x")
    assert live.export_due(now_ns=10 * SECOND) == 0
    assert [(record.args[0], record.exc_info is not None) for record in caplog.records] == [  # type: ignore[index]
        ("could not export a live WebSocket session's messages", True)
    ]
    live.stop()


def test_a_quiet_session_does_not_hold_back_the_sessions_after_it(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    quiet, busy = open_session(provider), open_session(provider)
    for session, span in (quiet, busy):
        live.track(session, span)  # type: ignore[arg-type]
    busy[0].on_message("received", "x")
    assert live.export_due(now_ns=10 * SECOND) == 1
    assert len(exporter.get_finished_spans()) == 1
    live.stop()


def test_untracking_twice_is_harmless(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = traced
    live = LiveExport(provider.get_tracer("t"), interval_seconds=10)
    pending = live.track(*open_session(provider))  # type: ignore[arg-type]
    live.untrack(pending)
    live.untrack(pending)
    live.stop()
