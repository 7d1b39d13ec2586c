"""One app's WebSocket numbers since it started: the single source of the metrics and the panel's statistics.

Open sessions are read where they are, in their own counters, whenever someone asks; a session's
counters move into the totals when it closes. So the per-message path gains nothing, and the
numbers are current while sessions are open, not only after they close. Sampled-out sessions are
counted too: statistics are not sampled.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from statistics import quantiles
from typing import TYPE_CHECKING

from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from litestar_ws_otel.session import Session

__all__ = ("MessageKey", "SessionStatistics", "StatisticsSnapshot")

RECENT_DURATIONS = 10_000
"""Closed sessions whose durations the panel's median and 95th percentile are taken over."""
_NS = 1e9

MessageKey = tuple["str | None", str, str]
"""``(route, direction, type)``: what the message counts are kept by."""


@dataclass(frozen=True)
class StatisticsSnapshot:
    """The numbers at one moment, as the panel's ``api/stats`` serves them."""

    connections_total: int
    connections_open: int
    messages_received: int
    messages_sent: int
    bytes_received: int
    bytes_sent: int
    duration_p50: float | None
    duration_p95: float | None
    duration_max: float | None
    close_codes: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "connections_total": self.connections_total,
            "connections_open": self.connections_open,
            "messages_received": self.messages_received,
            "messages_sent": self.messages_sent,
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "duration_seconds": {"p50": self.duration_p50, "p95": self.duration_p95, "max": self.duration_max},
            "close_codes": dict(self.close_codes),
            "errors": self.errors,
        }


class SessionStatistics:
    """Connections, messages, bytes, durations, close codes and errors of one app.

    ``opened`` and ``closed`` are called once per connection by the middleware; readers (the
    metric reader's thread, the panel) take a consistent view under one lock and add up the open
    sessions' counters outside it.

    Args:
        recent_durations: How many closed sessions' durations the percentiles are taken over.
    """

    def __init__(self, *, recent_durations: int = RECENT_DURATIONS) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Session] = {}
        self._messages: Counter[MessageKey] = Counter()
        self._bytes: Counter[tuple[str | None, str]] = Counter()
        self._close_codes: Counter[int] = Counter()
        self._routes: set[str | None] = set()
        """Routes that had a connection: reported with 0 open rather than not at all, once quiet."""
        self._durations: deque[float] = deque(maxlen=recent_durations)
        self._max_duration: float | None = None
        self._connections_total = 0
        self._closed_total = 0
        self._percentiles: tuple[int, float | None, float | None] = (0, None, None)
        """``(closed sessions, p50, p95)`` as last computed: the live socket asks several times a second."""
        self._errors = 0
        self.duration_listeners: list[Callable[[float, Session, str | None], None]] = []
        """Called with each closed session's duration (the metrics' histogram); an error is logged once."""

    def opened(self, session: Session) -> None:
        with self._lock:
            self._open[id(session)] = session
            self._connections_total += 1

    def closed(self, session: Session, *, error_type: str | None) -> None:
        """Move ``session``'s counters into the totals; ``error_type`` when it ended in a server error."""
        duration = ((session.ended_ns or session.started_ns) - session.started_ns) / _NS
        route = session.route
        with self._lock:
            if self._open.pop(id(session), None) is None:
                return
            self._add_counts(self._messages, self._bytes, (session,))
            self._routes.add(route)
            if session.close is not None:
                self._close_codes[session.close.code] += 1
            if error_type is not None:
                self._errors += 1
            self._durations.append(duration)
            self._closed_total += 1
            self._max_duration = duration if self._max_duration is None else max(self._max_duration, duration)
        for listener in self.duration_listeners:
            try:
                listener(duration, session, error_type)
            except Exception as exc:
                report_once("could not record a WebSocket session's duration", exc, detail=str(route))

    def active_connections(self) -> dict[str | None, int]:
        """Open, accepted sessions by route; 0 for a route whose connections have all closed.

        An up-down counter that stopped reporting a route would leave its last value standing in
        the backend, as if those connections were still open.
        """
        with self._lock:
            counts = dict.fromkeys(self._routes, 0)
            open_sessions = list(self._open.values())
        for session in open_sessions:
            if _is_active(session):
                counts[session.route] = counts.get(session.route, 0) + 1
        return counts

    def messages(self) -> Counter[MessageKey]:
        """Messages of closed and open sessions by ``(route, direction, type)``."""
        return self.counts()[0]

    def bytes(self) -> Counter[tuple[str | None, str]]:
        """Payload bytes of closed and open sessions by ``(route, direction)``."""
        return self.counts()[1]

    def counts(self) -> tuple[Counter[MessageKey], Counter[tuple[str | None, str]]]:
        """Messages and bytes together, from one look at the open sessions."""
        with self._lock:
            messages, payload_bytes = Counter(self._messages), Counter(self._bytes)
            open_sessions = list(self._open.values())
        self._add_counts(messages, payload_bytes, open_sessions)
        return messages, payload_bytes

    def snapshot(self) -> StatisticsSnapshot:
        """The panel's numbers: the same totals the metrics report."""
        messages, payload_bytes = self.counts()
        with self._lock:
            closed_total = self._closed_total
            durations = list(self._durations) if self._percentiles[0] != closed_total else None
            max_duration = self._max_duration
            close_codes = {str(code): count for code, count in sorted(self._close_codes.items())}
            connections_total, errors = self._connections_total, self._errors
        if durations is not None:
            self._percentiles = (closed_total, *_percentiles(durations))
        _, p50, p95 = self._percentiles
        return StatisticsSnapshot(
            connections_total=connections_total,
            connections_open=sum(self.active_connections().values()),
            messages_received=sum(n for (_, direction, _), n in messages.items() if direction == "received"),
            messages_sent=sum(n for (_, direction, _), n in messages.items() if direction == "sent"),
            bytes_received=sum(n for (_, direction), n in payload_bytes.items() if direction == "received"),
            bytes_sent=sum(n for (_, direction), n in payload_bytes.items() if direction == "sent"),
            duration_p50=p50,
            duration_p95=p95,
            duration_max=max_duration,
            close_codes=close_codes,
            errors=errors,
        )

    @staticmethod
    def _add_counts(
        messages: Counter[MessageKey], payload_bytes: Counter[tuple[str | None, str]], sessions: Iterable[Session]
    ) -> None:
        """Add sessions' counters; a key appears with its first message, so quiet kinds stay out."""
        for session in sessions:
            route = session.route
            binary_received, binary_sent = session.binary_received, session.binary_sent
            for key, count in (
                ((route, "received", "text"), session.messages_received - binary_received),
                ((route, "received", "binary"), binary_received),
                ((route, "sent", "text"), session.messages_sent - binary_sent),
                ((route, "sent", "binary"), binary_sent),
            ):
                if count:
                    messages[key] += count
            if session.bytes_received:
                payload_bytes[(route, "received")] += session.bytes_received
            if session.bytes_sent:
                payload_bytes[(route, "sent")] += session.bytes_sent


def _percentiles(durations: list[float]) -> tuple[float | None, float | None]:
    """The median and the 95th percentile (inclusive method: a single value is its own percentiles)."""
    if len(durations) < 2:
        return (durations[0], durations[0]) if durations else (None, None)
    cuts = quantiles(durations, n=100, method="inclusive")
    return cuts[49], cuts[94]


def _is_active(session: Session) -> bool:
    """Accepted and not closed: what ``websocket.server.active_connections`` counts."""
    return session.accepted_ns is not None and session.close is None and session.ended_ns is None
