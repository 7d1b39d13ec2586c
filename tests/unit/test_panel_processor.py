"""The processor's read methods for the panel's list and live stream: ``summaries`` and ``messages_since``."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.session_context import context_with_session

POLICY = PreviewPolicy(
    capture_payloads=True, max_payload_bytes=16, capture_binary_preview=False, binary_preview_bytes=4
)


@pytest.fixture
def processor(provider: TracerProvider) -> RecentSessionsProcessor:
    """A processor for the panel, added to ``provider``."""
    processor = RecentSessionsProcessor()
    provider.add_span_processor(processor)
    return processor


def start(
    provider: TracerProvider, processor: RecentSessionsProcessor, *, max_messages: int = 5
) -> tuple[Session, Any]:
    session = Session(policy=POLICY, max_messages=max_messages, path="/x", route="/x", owner=processor)
    span = provider.get_tracer("t").start_span("WS /x", context=context_with_session(session, None))
    session.on_accept(None)
    return session, span


def finish(session: Session, span: Any) -> None:
    session.on_close(1000, "", "client")
    session.finish()
    span.end()


def test_summaries_are_sessions_without_messages(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    first, first_span = start(provider, processor)
    first.on_message("received", "a")
    finish(first, first_span)
    second, _ = start(provider, processor)
    second.on_message("sent", "b")
    full = processor.sessions()
    assert processor.summaries() == [{k: v for k, v in doc.items() if k != "messages"} for doc in full]
    assert [s["state"] for s in processor.summaries(state="open")] == ["open"]
    assert [s["state"] for s in processor.summaries(state="closed")] == ["closed"]
    assert processor.summaries(limit=1) == processor.summaries()[:1]


def test_messages_since_returns_only_newer_ids_per_direction(
    provider: TracerProvider, processor: RecentSessionsProcessor
) -> None:
    session, _ = start(provider, processor)
    for text in ("r1", "r2"):
        session.on_message("received", text)
    session.on_message("sent", "s1")
    span_id = processor.summaries()[0]["span_id"]
    every = processor.messages_since(span_id)
    assert every == processor.sessions()[0]["messages"]
    newer = processor.messages_since(span_id, received_after=1, sent_after=1)
    assert newer is not None
    assert [(m["direction"], m["id"], m["payload"]) for m in newer] == [("received", 2, "r2")]
    assert processor.messages_since(span_id, received_after=2, sent_after=1) == []


def test_messages_since_is_bounded_by_the_ring(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    session, _ = start(provider, processor, max_messages=5)
    for index in range(1, 1001):
        session.on_message("received", str(index))
    newer = processor.messages_since(processor.summaries()[0]["span_id"])
    assert newer is not None
    assert [m["id"] for m in newer] == [996, 997, 998, 999, 1000]


def test_messages_since_finds_finished_sessions_and_none_for_unknown(
    provider: TracerProvider, processor: RecentSessionsProcessor
) -> None:
    session, span = start(provider, processor)
    session.on_message("sent", "bye")
    finish(session, span)
    span_id = processor.summaries()[0]["span_id"]
    assert [m["payload"] for m in processor.messages_since(span_id) or []] == ["bye"]
    assert processor.messages_since("0123456789abcdef") is None
    assert processor.messages_since("not hex") is None
