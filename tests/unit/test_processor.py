from __future__ import annotations

import threading
import time

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.session_context import context_with_session
from litestar_ws_otel.spans import error_type

POLICY = PreviewPolicy(
    capture_payloads=True,
    max_payload_bytes=16,
    capture_binary_preview=False,
    binary_preview_bytes=4,
)


def start(
    provider: TracerProvider,
    processor: RecentSessionsProcessor,
    name: str = "WS /x",
    owner: object = None,
):  # type: ignore[no-untyped-def]
    session = Session(
        policy=POLICY,
        max_messages=5,
        path="/x?token=REDACTED",
        route="/x",
        owner=owner or processor,
    )
    span = provider.get_tracer("t").start_span(name, context=context_with_session(session, None))
    return session, span


def end(session: Session, span, *, error: bool = False) -> None:  # type: ignore[no-untyped-def]
    session.on_close(1000, "", "client")
    session.finish()
    if error:  # as the middleware marks a failed session's span
        span.set_attribute("error.type", error_type(session))
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def test_live_then_finished_session_as_documented_dict(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    session.on_accept(None)
    session.on_message("received", "hello")
    (live,) = processor.sessions()
    assert live["state"] == "open"
    assert live["ended_at"] is None
    assert live["messages"] == [
        {
            "direction": "received",
            "type": "text",
            "id": 1,
            "size": 5,
            "time": pytest.approx(session.records()[0].time_ns / 1e9),
            "payload": "hello",
            "truncated": False,
        }
    ]
    end(session, span)
    (done,) = processor.sessions()
    assert set(done) == {
        "trace_id", "span_id", "name", "route", "path", "state", "started_at", "accepted_at", "ended_at",
        "exported_at", "handshake_status", "subprotocol", "messages_received", "messages_sent",
        "bytes_received", "bytes_sent", "close_code", "close_reason", "close_initiator", "status",
        "error_type", "messages",
    }  # fmt: skip
    assert done["state"] == "closed"
    assert done["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert done["span_id"] == format(span.get_span_context().span_id, "016x")
    assert done["name"] == "WS /x"
    assert done["path"] == "/x?token=REDACTED"
    assert done["close_code"] == 1000
    assert done["close_initiator"] == "client"
    assert done["status"] == "unset"
    assert done["ended_at"] >= done["accepted_at"] >= done["started_at"]
    assert done["accepted_at"] == session.accepted_ns / 1e9
    assert (done["subprotocol"], done["error_type"]) == (None, None)
    assert processor.session(done["span_id"]) == done
    assert processor.session("0" * 16) is None


def test_error_status_is_reported(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    end(session, span, error=True)
    assert processor.sessions()[0]["status"] == "error"
    assert processor.sessions()[0]["error_type"] == "1000"  # no exception: the close code, as error.type


def test_accept_subprotocol_and_error_type_of_a_failed_session(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    denied, span = start(provider, processor)
    end(denied, span)
    session, span = start(provider, processor)
    session.on_accept("chat.v2")
    session.on_exception(ValueError("bad frame"))
    (summary,) = processor.summaries(state="open")
    assert (summary["subprotocol"], summary["error_type"]) == ("chat.v2", None)  # not an error until it ends
    end(session, span, error=True)
    failed, never_accepted = processor.summaries()
    assert failed["accepted_at"] == session.accepted_ns / 1e9
    assert failed["subprotocol"] == "chat.v2"
    assert failed["error_type"] == "ValueError"
    assert processor.sessions()[0]["error_type"] == "ValueError"
    assert (never_accepted["accepted_at"], never_accepted["subprotocol"], never_accepted["error_type"]) == (
        None,
        None,
        None,
    )


def test_spans_without_our_session_are_ignored(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    other = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    provider.add_span_processor(other)
    provider.get_tracer("t").start_span("GET /").end()
    session, span = start(provider, processor)
    end(session, span)
    assert len(processor.sessions()) == 1
    assert other.sessions() == []  # two apps on one provider never share sessions


def test_newest_first_and_filters(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    first = start(provider, processor, "WS /a")
    end(*first)
    second = start(provider, processor, "WS /b")
    third = start(provider, processor, "WS /c")
    end(*third)
    assert [s["name"] for s in processor.sessions()] == ["WS /c", "WS /b", "WS /a"]
    assert [s["name"] for s in processor.sessions(state="open")] == ["WS /b"]
    assert [s["name"] for s in processor.sessions(state="closed", limit=1)] == ["WS /c"]
    end(*second)


def test_bound_evicts_oldest_finished_first_then_oldest_live(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor(max_sessions=3)
    provider.add_span_processor(processor)
    live_old = start(provider, processor, "WS /live-old")
    done_old = start(provider, processor, "WS /done-old")
    end(*done_old)
    done_new = start(provider, processor, "WS /done-new")
    end(*done_new)
    start(provider, processor, "WS /live-new")
    assert [s["name"] for s in processor.sessions()] == [
        "WS /live-new",
        "WS /done-new",
        "WS /live-old",
    ]
    start(provider, processor, "WS /live-3")
    start(provider, processor, "WS /live-4")
    names = [s["name"] for s in processor.sessions()]
    assert names == ["WS /live-4", "WS /live-3", "WS /live-new"]
    assert len(names) == 3
    end(*live_old)  # an evicted live session ending does not come back
    assert "WS /live-old" not in [s["name"] for s in processor.sessions()]


def test_finished_sessions_expire_after_the_ttl(provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    processor = RecentSessionsProcessor(session_ttl_seconds=60)
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    end(session, span)
    assert len(processor.sessions()) == 1
    real_time_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 61 * 10**9)
    assert processor.sessions() == []


def test_shutdown_empties_the_store_and_stops_tracking(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    start(provider, processor)
    assert processor.force_flush() is True
    processor.shutdown()
    assert processor.sessions() == []
    start(provider, processor)
    assert processor.sessions() == []


def test_callbacks_never_raise(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    monkeypatch.setattr(processor, "_live", None)  # break the store on purpose
    span.end()
    processor.on_start(span, context_with_session(session, otel_context.get_current()))
    assert [(record.args[0], record.exc_info is not None) for record in caplog.records] == [  # type: ignore[index]
        ("could not store a finished WebSocket session", True),
        ("could not track a WebSocket session", True),
    ]


def test_invalid_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_sessions must be >= 1"):
        RecentSessionsProcessor(max_sessions=0)
    with pytest.raises(ValueError, match="session_ttl_seconds must be > 0"):
        RecentSessionsProcessor(session_ttl_seconds=0)


def test_concurrent_writers_and_readers_stay_bounded(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor(max_sessions=20)
    provider.add_span_processor(processor)
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            for _ in range(300):
                session, span = start(provider, processor)
                session.on_message("sent", "x")
                end(session, span)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                assert len(processor.sessions()) <= 20
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=write) for _ in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    stop.set()
    reader.join(timeout=60)
    assert errors == []
    assert len(processor.sessions()) == 20


# --- the store's edges --------------------------------------------------------------------------


def test_a_closed_session_whose_span_has_not_ended_is_listed_as_closed(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    session.on_accept(None)
    session.on_close(1000, "", "client")  # the span ends a moment later, in the middleware's finally
    assert [s["state"] for s in processor.summaries()] == ["closed"]
    assert processor.summaries(state="open") == []
    span.end()


def test_a_live_export_time_is_listed(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    assert processor.summaries()[0]["exported_at"] is None
    session.exported_ns = 12 * 10**9
    assert processor.summaries()[0]["exported_at"] == 12.0
    span.end()


def test_an_error_status_without_error_type_is_stored_as_other(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    span.set_status(Status(StatusCode.ERROR))
    end(session, span)
    assert processor.sessions()[0]["error_type"] == "_OTHER"


def test_defaults_keep_50_sessions_for_an_hour(provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's defaults are the config's: ``max_sessions=50``, ``session_ttl_seconds=3600``."""
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    for _ in range(51):
        end(*start(provider, processor))
    assert len(processor.sessions()) == 50
    real_time_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 3599 * 10**9)
    assert len(processor.sessions()) == 50
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + 3600_500_000_000)
    assert processor.sessions() == []


def test_a_session_ended_exactly_the_ttl_ago_is_still_kept(
    provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = RecentSessionsProcessor(session_ttl_seconds=60)
    provider.add_span_processor(processor)
    session, span = start(provider, processor)
    end(session, span)
    assert session.ended_ns is not None
    monkeypatch.setattr(time, "time_ns", lambda: session.ended_ns + 60 * 10**9)
    assert len(processor.sessions()) == 1
    monkeypatch.setattr(time, "time_ns", lambda: session.ended_ns + 60 * 10**9 + 1)
    assert processor.sessions() == []


def test_one_session_and_a_sub_second_ttl_are_accepted(provider: TracerProvider) -> None:
    processor = RecentSessionsProcessor(max_sessions=1, session_ttl_seconds=0.5)
    provider.add_span_processor(processor)
    first = start(provider, processor, "WS /first")
    end(*first)
    second = start(provider, processor, "WS /second")
    assert [s["name"] for s in processor.sessions()] == ["WS /second"]
    end(*second)


def test_the_store_stays_bounded_with_no_reader_calling_it(provider: TracerProvider) -> None:
    """Starting a session past the bound evicts at once: a finished session is freed even if nobody reads."""
    import gc
    import weakref

    processor = RecentSessionsProcessor(max_sessions=2)
    provider.add_span_processor(processor)
    oldest, span = start(provider, processor)
    end(oldest, span)
    gone = weakref.ref(oldest)
    end(*start(provider, processor))
    del oldest, span
    live = [start(provider, processor) for _ in range(2)]
    gc.collect()
    assert gone() is None
    for session, span in live:
        end(session, span)


def test_ending_a_foreign_or_a_tracked_span_logs_nothing(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    processor = RecentSessionsProcessor(max_sessions=1)
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("GET /").end()
    for _ in range(3):  # past the bound too
        end(*start(provider, processor))
    assert len(processor.sessions()) == 1
    assert caplog.records == []
