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
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from litestar_ws_otel.session import Session

__all__ = ("ClosedSession", "MessageKey", "SessionStatistics", "StatisticsSnapshot")

RECENT_DURATIONS = 10_000
"""Closed sessions whose durations the panel's median and 95th percentile are taken over."""
_NS = 1e9

MessageKey = tuple["str | None", str, str]
"""``(route, direction, type)``: what the message counts are kept by."""


class ClosedSession(NamedTuple):
    """What the duration histogram records of a closed session."""

    seconds: float
    route: str | None
    close_code: int | None
    error_type: str | None


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

    ``opened`` and ``closed`` are called once per connection by the middleware and do a few list
    and dict updates under one lock; readers (the metric reader's thread, the panel) copy under
    the lock and add up the open sessions' counters outside it.

    Args:
        recent_durations: How many closed sessions' durations the percentiles are taken over, and
            how many closed sessions may wait for the metric reader (``take_durations``).
    """

    def __init__(self, *, recent_durations: int = RECENT_DURATIONS) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Session] = {}
        self._totals: dict[str | None, list[int]] = {}
        """Closed sessions' counts by route: text and binary received, text and binary sent, bytes
        received, bytes sent. Routes that had a connection stay, so a quiet route reports 0 open."""
        self._close_codes: Counter[int] = Counter()
        self._durations: deque[float] = deque(maxlen=recent_durations)
        self._max_duration: float | None = None
        self._connections_total = 0
        self._closed_total = 0
        self._percentiles: tuple[int, float | None, float | None] = (0, None, None)
        """``(closed sessions, p50, p95)`` as last computed: the live socket asks several times a second."""
        self._errors = 0
        self._pending: deque[ClosedSession] | None = None
        """Closed sessions the duration histogram has not recorded yet; ``None`` while no metrics read them."""
        self._pending_limit = recent_durations

    def opened(self, session: Session) -> None:
        with self._lock:
            self._open[id(session)] = session
            self._connections_total += 1

    def closed(self, session: Session, *, error_type: str | None) -> None:
        """Move ``session``'s counters into the totals; ``error_type`` when it ended in a server error."""
        duration = ((session.ended_ns or session.started_ns) - session.started_ns) / _NS
        route = session.route
        close = session.close
        with self._lock:
            if self._open.pop(id(session), None) is None:
                return
            totals = self._totals.get(route)
            if totals is None:
                totals = self._totals[route] = [0, 0, 0, 0, 0, 0]
            _add(totals, session)
            if close is not None:
                self._close_codes[close.code] += 1
            if error_type is not None:
                self._errors += 1
            self._durations.append(duration)
            self._closed_total += 1
            if self._max_duration is None or duration > self._max_duration:
                self._max_duration = duration
            if self._pending is not None:
                self._pending.append(ClosedSession(duration, route, close.code if close else None, error_type))

    def record_durations(self) -> None:
        """Keep closed sessions for ``take_durations`` from now on (the metrics call it once)."""
        with self._lock:
            if self._pending is None:
                self._pending = deque(maxlen=self._pending_limit)

    def take_durations(self) -> list[ClosedSession]:
        """The sessions closed since the last call, oldest first.

        The duration histogram records them when the metric reader collects, so a connection never
        waits on the SDK; at most ``recent_durations`` of them wait.
        """
        with self._lock:
            if not self._pending:
                return []
            taken = list(self._pending)
            self._pending.clear()
        return taken

    def active_connections(self) -> dict[str | None, int]:
        """Open, accepted sessions by route; 0 for a route whose connections have all closed.

        An up-down counter that stopped reporting a route would leave its last value standing in
        the backend, as if those connections were still open.
        """
        with self._lock:
            counts = dict.fromkeys(self._totals, 0)
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
        """Messages and bytes from one look at the open sessions; a kind appears with its first message."""
        with self._lock:
            totals = {route: list(counts) for route, counts in self._totals.items()}
            open_sessions = list(self._open.values())
        for session in open_sessions:
            counts = totals.get(session.route)
            if counts is None:
                counts = totals[session.route] = [0, 0, 0, 0, 0, 0]
            _add(counts, session)
        messages: Counter[MessageKey] = Counter()
        payload_bytes: Counter[tuple[str | None, str]] = Counter()
        for route, (text_in, binary_in, text_out, binary_out, bytes_in, bytes_out) in totals.items():
            for key, count in (
                ((route, "received", "text"), text_in),
                ((route, "received", "binary"), binary_in),
                ((route, "sent", "text"), text_out),
                ((route, "sent", "binary"), binary_out),
            ):
                if count:
                    messages[key] = count
            if bytes_in:
                payload_bytes[(route, "received")] = bytes_in
            if bytes_out:
                payload_bytes[(route, "sent")] = bytes_out
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


def _add(counts: list[int], session: Session) -> None:
    """Add a session's counters to ``[text in, binary in, text out, binary out, bytes in, bytes out]``."""
    binary_received, binary_sent = session.binary_received, session.binary_sent
    counts[0] += session.messages_received - binary_received
    counts[1] += binary_received
    counts[2] += session.messages_sent - binary_sent
    counts[3] += binary_sent
    counts[4] += session.bytes_received
    counts[5] += session.bytes_sent


def _percentiles(durations: list[float]) -> tuple[float | None, float | None]:
    """The median and the 95th percentile (inclusive method: a single value is its own percentiles)."""
    if len(durations) < 2:
        return (durations[0], durations[0]) if durations else (None, None)
    cuts = quantiles(durations, n=100, method="inclusive")
    return cuts[49], cuts[94]


def _is_active(session: Session) -> bool:
    """Accepted and not closed: what ``websocket.server.active_connections`` counts."""
    return session.accepted_ns is not None and session.close is None and session.ended_ns is None
