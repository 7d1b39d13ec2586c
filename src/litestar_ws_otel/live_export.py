"""Incremental export: open sessions send their new messages as child spans, so a long session is
visible in the backend while it lasts and a crash loses at most about one interval of it.

WebSocket sessions live for hours, and a span leaves only when it ends. So while a session is
open, the records written since its last export leave at least once per
``export_interval_seconds`` as a child of the session span, ``{session name} messages``, with the
session's counters so far and its own ``websocket.events.dropped``. The session span itself still
ends at close, with the records since the last export.

One daemon thread per app does the timing, not one per connection, and it wakes when the next
session is due rather than on a fixed tick. The per-message path is untouched: the thread reads
the rings the connections write (``Session.records_since`` is safe from another thread). The
thread holds the exporter weakly, so it ends soon after its app is gone.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from opentelemetry import trace

from litestar_ws_otel import spans
from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from litestar_ws_otel.session import MessageRecord, Session

__all__ = ("THREAD_NAME", "LiveExport", "PendingExport")

THREAD_NAME = "litestar-ws-otel-export"
"""The export thread's name, as thread listings and profilers show it."""
_NS = 1_000_000_000
_MIN_WAIT_SECONDS = 0.01
"""The shortest sleep of the thread: sessions due together leave together."""
_STOP_JOIN_SECONDS = 2.0


class PendingExport:
    """One open session's export cursor: which records have left already, and when.

    ``take`` is called by the exporter's thread and, once, by the connection when it ends; the lock
    (one for all the app's sessions: a lock each would cost every connection its bytes) makes each
    record leave at most once whichever comes first.
    """

    __slots__ = ("_closed", "_lock", "due_ns", "sequence", "session", "span")

    def __init__(self, session: Session, span: trace.Span, due_ns: int, lock: threading.Lock) -> None:
        self.session = session
        self.span = span
        self.sequence = 0
        """The sequence of the first record that has not left yet."""
        self.due_ns = due_ns
        """When the thread looks at this session next: an interval after its start or its last look."""
        self._lock = lock
        self._closed = False

    def take(self) -> tuple[list[MessageRecord], int]:
        """The records written since the last ``take``, and how many of them the ring no longer holds.

        Nothing once the session is closed: its last records belong to the session span.
        """
        with self._lock:
            if self._closed:
                return [], 0
            return self._take()

    def close(self) -> tuple[list[MessageRecord] | None, int | None]:
        """The records the session span carries, and its ``websocket.events.dropped``.

        ``(None, None)`` when nothing left early: the span carries every kept record and counts
        every drop, exactly as without incremental export.
        """
        with self._lock:
            self._closed = True
            if self.sequence == 0:
                return None, None
            return self._take()

    def _take(self) -> tuple[list[MessageRecord], int]:
        records, written = self.session.records_since(self.sequence)
        dropped = written - self.sequence - len(records)
        self.sequence = written
        return records, dropped


class LiveExport:
    """One app's incremental export: every interval, open sessions with new records export them.

    Args:
        tracer: Makes the ``messages`` spans (the app's tracer).
        interval_seconds: How often an open session's new records leave, at least.
    """

    def __init__(self, tracer: trace.Tracer, interval_seconds: float) -> None:
        self.tracer = tracer
        self.interval_ns = int(interval_seconds * _NS)
        self._lock = threading.Lock()
        self._take_lock = threading.Lock()
        """Shared by every session's cursor (``PendingExport``)."""
        self._open: dict[int, PendingExport] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def track(self, session: Session, span: trace.Span) -> PendingExport:
        """Export ``session``'s records from now on, while it is open; starts the thread on first use."""
        pending = PendingExport(session, span, session.started_ns + self.interval_ns, self._take_lock)
        with self._lock:
            self._open[id(pending)] = pending
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=_run, args=(weakref.ref(self),), name=THREAD_NAME, daemon=True)
                self._thread.start()
        return pending

    def untrack(self, pending: PendingExport) -> None:
        """The session ended: its last records go with the session span, not from here."""
        with self._lock:
            self._open.pop(id(pending), None)

    def export_due(self, now_ns: int | None = None, *, everything: bool = False) -> int:
        """Look at every open session whose interval has passed; export its new records, if any.

        Each session is looked at once per interval, from its start: what it recorded since the
        last look leaves then, and a quiet session exports nothing. Returns the spans made.

        Args:
            now_ns: The time to measure intervals against.
            everything: Export every open session's new records, due or not (at shutdown).
        """
        now_ns = time.time_ns() if now_ns is None else now_ns
        with self._lock:
            candidates = list(self._open.values())
        exported = 0
        for pending in candidates:
            if not everything and now_ns < pending.due_ns:
                continue
            pending.due_ns = now_ns + self.interval_ns
            if pending.session.written == pending.sequence:
                continue  # a quiet session exports nothing new
            try:
                exported += self._export(pending, now_ns)
            except Exception as exc:
                report_once("could not export a live WebSocket session's messages", exc)
        return exported

    def next_due_ns(self, now_ns: int) -> int:
        """When the thread should look again: the earliest session's turn, at most an interval away."""
        with self._lock:
            earliest = min((pending.due_ns for pending in self._open.values()), default=now_ns + self.interval_ns)
        return min(earliest, now_ns + self.interval_ns)

    def _export(self, pending: PendingExport, now_ns: int) -> int:
        records, dropped = pending.take()
        if not records and not dropped:
            return 0
        session_span = pending.span
        start_ns = records[0].time_ns if records else now_ns
        span = self.tracer.start_span(
            f"{getattr(session_span, 'name', 'WS')} messages",
            context=trace.set_span_in_context(session_span),
            kind=trace.SpanKind.INTERNAL,
            attributes=spans.counter_attributes(pending.session, dropped),
            start_time=min(start_ns, now_ns),
        )
        spans.write_message_events(span, records)
        span.end(end_time=max(now_ns, records[-1].time_ns if records else now_ns))
        pending.session.exported_ns = now_ns
        return 1

    def stop(self) -> None:
        """Stop the thread and export what open sessions have not exported yet (at shutdown)."""
        self._stopped.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=_STOP_JOIN_SECONDS)
        self.export_due(everything=True)


def _run(exporter_ref: weakref.ref[LiveExport]) -> None:
    """The export thread: sleep until the next session's turn, export what is due; end with the
    exporter or at ``stop``. It wakes once per interval per session, not on a fixed tick.

    It holds the exporter only while exporting, never while waiting, so the app can go.
    """
    while True:
        exporter = exporter_ref()
        if exporter is None:
            return
        now_ns = time.time_ns()
        wait_seconds = max(_MIN_WAIT_SECONDS, (exporter.next_due_ns(now_ns) - now_ns) / _NS)
        stopped = exporter._stopped
        del exporter
        if stopped.wait(wait_seconds):
            return
        exporter = exporter_ref()
        if exporter is None:
            return
        exporter.export_due()
        del exporter
