"""One span processor per tracer provider, handing each session span to the store of its app.

Apps are built and dropped all the time (a test suite builds one per test), often on one shared
provider. A store added to the provider per app would stay there for good: every span start would
walk all of them, and the finished sessions of long-gone apps would never be freed. Instead each
provider gets one ``SessionDispatcher``; it holds a store only while one of its spans is live, so
a store, and its sessions, go away with the app that owns it.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import SpanProcessor

from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.reporting import report_once
from litestar_ws_otel.session_context import session_in

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider

__all__ = ("SessionDispatcher", "dispatcher_for")

_dispatchers: weakref.WeakKeyDictionary[TracerProvider, SessionDispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def dispatcher_for(provider: TracerProvider) -> SessionDispatcher:
    """The provider's dispatcher, added to it the first time it is asked for."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(provider)
        if dispatcher is None:
            dispatcher = _dispatchers[provider] = SessionDispatcher()
            provider.add_span_processor(dispatcher)
        return dispatcher


class SessionDispatcher(SpanProcessor):
    """Hands the spans of sessions to the ``RecentSessionsProcessor`` that owns each session.

    ``on_start`` reads the session from the span's context and its store from the session;
    ``on_end`` finds the store by span id. Both are O(1) and never raise.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, RecentSessionsProcessor] = {}
        self._stores: weakref.WeakSet[RecentSessionsProcessor] = weakref.WeakSet()
        self._shutdown = False

    def attach(self, store: RecentSessionsProcessor) -> None:
        """Remember ``store`` (weakly), so that shutting the provider down empties it too."""
        with self._lock:
            self._stores.add(store)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            session = session_in(parent_context)
            if session is None or self._shutdown:
                return
            store = session.owner
            if isinstance(store, RecentSessionsProcessor):
                with self._lock:
                    self._live[span.get_span_context().span_id] = store
                store.on_start(span, parent_context)
        except Exception as exc:
            report_once("could not hand a WebSocket session to its store", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span_context = span.get_span_context()
            if span_context is None:
                return
            with self._lock:
                store = self._live.pop(span_context.span_id, None)
            if store is not None:
                store.on_end(span)
        except Exception as exc:
            report_once("could not hand a finished WebSocket session to its store", exc)

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            self._live.clear()
            stores = list(self._stores)
        for store in stores:
            store.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
