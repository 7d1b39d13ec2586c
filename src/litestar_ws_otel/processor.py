"""``RecentSessionsProcessor``: the bounded store of recent sessions behind the panel.

It is an ordinary span processor, so it sees exactly the sessions that the tracer provider
records: a session that a sampler drops never reaches it, and the panel does not show it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE, ErrorTypeValues
from opentelemetry.trace import StatusCode, format_span_id

from litestar_ws_otel.documents import message_document, session_document, session_summary, state_of
from litestar_ws_otel.reporting import report_once
from litestar_ws_otel.session_context import session_in

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from litestar_ws_otel.session import Session

__all__ = ("RecentSessionsProcessor",)

_NS = 1e9


@dataclass(slots=True)
class _Entry:
    """A stored session (``documents.StoredSession``): the ``Session`` and what its span said."""

    trace_id: int
    span_id: int
    name: str
    session: Session
    error_type: str | None = None


class RecentSessionsProcessor(SpanProcessor):
    """Keeps the newest ``max_sessions`` WebSocket sessions, live and finished, in memory.

    ``on_start`` and ``on_end`` run on the thread that starts or ends the span, so they do O(1)
    work under one lock and never raise. Readers copy under the lock and build plain dicts
    outside it.
    """

    def __init__(self, *, max_sessions: int = 50, session_ttl_seconds: float = 3600.0) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions!r}")
        if session_ttl_seconds <= 0:
            raise ValueError(f"session_ttl_seconds must be > 0, got {session_ttl_seconds!r}")
        self._max_sessions = max_sessions
        self._ttl_ns = int(session_ttl_seconds * _NS)
        self._lock = threading.Lock()
        self._live: dict[int, _Entry] = {}
        self._finished: deque[_Entry] = deque()
        self._shutdown = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            session = session_in(parent_context)
            if self._shutdown or session is None or session.owner is not self:
                return
            span_context = span.get_span_context()
            entry = _Entry(span_context.trace_id, span_context.span_id, span.name, session)
            with self._lock:
                self._live[entry.span_id] = entry
                if len(self._live) + len(self._finished) > self._max_sessions:
                    self._evict(time.time_ns())
        except Exception as exc:
            report_once("could not track a WebSocket session", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span_context = span.get_span_context()
            if span_context is None:
                return
            with self._lock:
                entry = self._live.pop(span_context.span_id, None)
                if entry is None:
                    return
                entry.name = span.name
                if span.status.status_code is StatusCode.ERROR:
                    error_type = (span.attributes or {}).get(ERROR_TYPE)
                    entry.error_type = str(error_type) if error_type is not None else ErrorTypeValues.OTHER.value
                self._finished.append(entry)
                self._evict(time.time_ns())
        except Exception as exc:
            report_once("could not store a finished WebSocket session", exc)

    def _evict(self, now_ns: int) -> None:
        """Drop expired finished sessions, then the oldest finished, then the oldest live."""
        finished = self._finished
        while finished and (finished[0].session.ended_ns or now_ns) < now_ns - self._ttl_ns:
            finished.popleft()
        while len(finished) + len(self._live) > self._max_sessions:
            if finished:
                finished.popleft()
            else:
                del self._live[next(iter(self._live))]

    def _entries(self) -> list[_Entry]:
        """Newest first: live and finished together, ordered by start time."""
        with self._lock:
            self._evict(time.time_ns())
            entries = [*self._live.values(), *self._finished]
        entries.sort(key=lambda entry: entry.session.started_ns, reverse=True)
        return entries

    def sessions(
        self, *, state: Literal["open", "closed"] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recent sessions, newest first, as the JSON-ready documents the panel's API serves."""
        return self._select(session_document, state, limit)

    def session(self, span_id: str) -> dict[str, Any] | None:
        """One session by its hex span id, or ``None`` when it is not (or no longer) kept."""
        entry = self._entry(span_id)
        return None if entry is None else session_document(entry)

    def summaries(
        self, *, state: Literal["open", "closed"] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recent sessions as ``sessions()`` gives them, without the ``messages`` key.

        The panel's list and live sockets read this several times a second; skipping the rings
        keeps that cheap.
        """
        return self._select(session_summary, state, limit)

    def _select(
        self, build: Callable[[_Entry], dict[str, Any]], state: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """Build documents only for the sessions asked for: filtering comes before the rings are read."""
        documents: list[dict[str, Any]] = []
        for entry in self._entries():
            if state is not None and state_of(entry.session) != state:
                continue
            documents.append(build(entry))
            if limit is not None and len(documents) >= limit:
                break
        return documents

    def messages_since(
        self, span_id: str, *, received_after: int = 0, sent_after: int = 0
    ) -> list[dict[str, Any]] | None:
        """The kept messages of one session that are newer than the given per-direction ids.

        A reader that remembers the last ``id`` it saw in each direction gets only what is new,
        without copying the rest into dicts; ids are exact even when the ring has dropped
        records. ``None`` when the session is not (or no longer) kept.
        """
        entry = self._entry(span_id)
        if entry is None:
            return None
        return [
            message_document(record)
            for record in entry.session.records()
            if record.message_id > (received_after if record.direction == "received" else sent_after)
        ]

    def _entry(self, span_id: str) -> _Entry | None:
        """One entry by its hex span id as ``format_span_id`` writes it, found without sorting the store."""
        try:
            key = int(span_id, 16)
        except ValueError:
            return None
        if format_span_id(key) != span_id:
            return None
        with self._lock:
            self._evict(time.time_ns())
            entry = self._live.get(key)
            if entry is None:
                entry = next((finished for finished in self._finished if finished.span_id == key), None)
        return entry

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            self._live.clear()
            self._finished.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
