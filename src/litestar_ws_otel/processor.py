"""``RecentSessionsProcessor``: the bounded store of recent sessions behind the panel.

It is an ordinary span processor, so it sees exactly the sessions that the tracer provider
records: a session that a sampler drops never reaches it, and the panel does not show it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

from litestar_ws_otel._span import error_type
from litestar_ws_otel.session import Session, SessionState

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from litestar_ws_otel.session import RawRecord

__all__ = ("RecentSessionsProcessor", "context_with_session")

logger = logging.getLogger(__name__)

_SESSION_KEY = otel_context.create_key("litestar_ws_otel.session")
_NS = 1e9


def context_with_session(session: Session, parent: Context | None) -> Context:
    """The context to start a session span with, so that ``on_start`` can find the session."""
    return otel_context.set_value(_SESSION_KEY, session, parent)


@dataclass(slots=True)
class _Entry:
    trace_id: int
    span_id: int
    name: str
    session: Session
    error: bool = False


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
            session = otel_context.get_value(_SESSION_KEY, parent_context)
            if self._shutdown or not isinstance(session, Session) or session.owner is not self:
                return
            span_context = span.get_span_context()
            entry = _Entry(span_context.trace_id, span_context.span_id, span.name, session)
            with self._lock:
                self._live[entry.span_id] = entry
                if len(self._live) + len(self._finished) > self._max_sessions:
                    self._evict(time.time_ns())
        except Exception:
            logger.exception("litestar-ws-otel: could not track a WebSocket session")

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
                entry.error = span.status.status_code is StatusCode.ERROR
                self._finished.append(entry)
                self._evict(time.time_ns())
        except Exception:
            logger.exception("litestar-ws-otel: could not store a finished WebSocket session")

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
        return self._select(_document, state, limit)

    def session(self, span_id: str) -> dict[str, Any] | None:
        """One session by its hex span id, or ``None`` when it is not (or no longer) kept."""
        entry = self._entry(span_id)
        return None if entry is None else _document(entry)

    def summaries(
        self, *, state: Literal["open", "closed"] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recent sessions as ``sessions()`` gives them, without the ``messages`` key.

        The panel's list and live sockets read this several times a second; skipping the rings
        keeps that cheap.
        """
        return self._select(_summary, state, limit)

    def _select(
        self, build: Callable[[_Entry], dict[str, Any]], state: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """Build documents only for the sessions asked for: filtering comes before the rings are read."""
        documents: list[dict[str, Any]] = []
        for entry in self._entries():
            if state is not None and _state_of(entry.session) != state:
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
            _message(record)
            for record in entry.session.raw_records()
            if record[3] > (received_after if record[1] == "received" else sent_after)  # id, direction
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

    def clear(self) -> None:
        """Forget finished sessions; live ones stay, since their spans are still running."""
        with self._lock:
            self._finished.clear()

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            self._live.clear()
            self._finished.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / _NS


def _document(entry: _Entry) -> dict[str, Any]:
    """One session as the panel's API serves it: ``_summary`` plus its kept messages, oldest first."""
    return {**_summary(entry), "messages": [_message(record) for record in entry.session.raw_records()]}


def _state_of(session: Session) -> str:
    return "open" if session.ended_ns is None and session.state is not SessionState.CLOSED else "closed"


def _summary(entry: _Entry) -> dict[str, Any]:
    """``_document`` without ``messages``: what the panel's list and live socket need."""
    session = entry.session
    close = session.close
    return {
        "trace_id": format_trace_id(entry.trace_id),
        "span_id": format_span_id(entry.span_id),
        "name": entry.name,
        "route": session.route,
        "path": session.path,
        "state": _state_of(session),
        "started_at": _seconds(session.started_ns),
        "accepted_at": _seconds(session.accepted_ns),
        "ended_at": _seconds(session.ended_ns),
        "subprotocol": session.subprotocol,
        "messages_received": session.messages_received,
        "messages_sent": session.messages_sent,
        "bytes_received": session.bytes_received,
        "bytes_sent": session.bytes_sent,
        "close_code": close.code if close else None,
        "close_reason": close.reason if close else None,
        "close_initiator": close.initiator if close else None,
        "status": "error" if entry.error else "unset",
        # The span's ``error.type``: the exception's qualified class name, else the close code.
        "error_type": error_type(session) if entry.error else None,
    }


def _message(record: RawRecord) -> dict[str, Any]:
    """One kept message as the panel's JSON document (from the ring's plain tuple: no call per field)."""
    time_ns, direction, kind, message_id, size, payload, truncated = record
    return {
        "direction": direction,
        "type": kind,
        "id": message_id,
        "size": size,
        "time": time_ns / _NS,
        "payload": payload,
        "truncated": truncated,
    }
