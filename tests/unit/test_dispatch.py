"""One ``SessionDispatcher`` per tracer provider hands each session span to the store of its app."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel.dispatch import SessionDispatcher, dispatcher_for
from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.session_context import context_with_session

POLICY = PreviewPolicy(
    capture_payloads=False, max_payload_bytes=8, capture_binary_preview=False, binary_preview_bytes=8
)


def start(provider: TracerProvider, owner: object, name: str = "WS /x") -> tuple[Session, Any]:
    session = Session(policy=POLICY, max_messages=2, owner=owner)
    span = provider.get_tracer("t").start_span(name, context=context_with_session(session, None))
    return session, span


def end(session: Session, span: Any) -> None:
    session.on_close(1000, "", "client")
    session.finish()
    span.end()


def test_a_provider_gets_one_dispatcher_however_often_it_is_asked(provider: TracerProvider) -> None:
    dispatcher = dispatcher_for(provider)
    assert dispatcher_for(provider) is dispatcher
    store = RecentSessionsProcessor()
    session, span = start(provider, store)
    end(session, span)
    assert len(store.sessions()) == 1  # handed over once: not twice by two dispatchers


def test_each_session_reaches_the_store_that_owns_it(provider: TracerProvider) -> None:
    dispatcher_for(provider)
    first, second = RecentSessionsProcessor(), RecentSessionsProcessor()
    a, a_span = start(provider, first, "WS /a")
    b, b_span = start(provider, second, "WS /b")
    assert [s["state"] for s in first.sessions()] == ["open"]
    end(a, a_span)
    end(b, b_span)
    assert [s["name"] for s in first.sessions()] == ["WS /a"]
    assert [s["name"] for s in second.sessions()] == ["WS /b"]
    assert [s["state"] for s in first.sessions() + second.sessions()] == ["closed", "closed"]


def test_spans_of_no_session_or_no_store_pass_by(provider: TracerProvider, caplog: pytest.LogCaptureFixture) -> None:
    dispatcher_for(provider)
    provider.get_tracer("t").start_span("GET /").end()
    session, span = start(provider, owner=object())
    end(session, span)
    assert caplog.records == []


def test_a_store_is_held_only_while_one_of_its_spans_is_live(provider: TracerProvider) -> None:
    dispatcher_for(provider)
    store = RecentSessionsProcessor()
    session, span = start(provider, store)
    end(session, span)
    gone = weakref.ref(store)
    del store, session, span
    gc.collect()
    assert gone() is None


def test_after_shutdown_no_session_is_tracked_and_attached_stores_are_emptied(provider: TracerProvider) -> None:
    dispatcher = dispatcher_for(provider)
    store = RecentSessionsProcessor()
    dispatcher.attach(store)
    end(*start(provider, store))
    assert len(store.sessions()) == 1
    dispatcher.shutdown()
    assert store.sessions() == []
    other = RecentSessionsProcessor()
    session, span = start(provider, other)
    end(session, span)
    assert other.sessions() == []  # never handed over: the dispatcher is shut down
    assert dispatcher.force_flush() is True


def test_a_store_that_raises_is_reported_once_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RecentSessionsProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            raise RuntimeError("start")

        def on_end(self, span: Any) -> None:
            raise RuntimeError("end")

    provider = TracerProvider()
    try:
        dispatcher = SessionDispatcher()
        provider.add_span_processor(dispatcher)
        store = Broken()
        for _ in range(2):
            end(*start(provider, store))
    finally:
        provider.shutdown()
    assert [(record.args[0], record.exc_info is not None) for record in caplog.records] == [  # type: ignore[index]
        ("could not hand a WebSocket session to its store", True),
        ("could not hand a finished WebSocket session to its store", True),
    ]


def test_a_span_without_context_is_ignored_on_end(caplog: pytest.LogCaptureFixture) -> None:
    class NoContext:
        def get_span_context(self) -> None:
            return None

    SessionDispatcher().on_end(NoContext())  # type: ignore[arg-type]
    assert caplog.records == []


def test_the_context_a_span_started_with_reaches_the_store(provider: TracerProvider) -> None:
    seen: list[object] = []

    class Recording(RecentSessionsProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            seen.append(parent_context)
            super().on_start(span, parent_context)

    dispatcher_for(provider)
    store = Recording()
    session = Session(policy=POLICY, max_messages=2, owner=store)
    context = context_with_session(session, otel_context.get_current())
    provider.get_tracer("t").start_span("WS /x", context=context).end()
    assert seen == [context]
