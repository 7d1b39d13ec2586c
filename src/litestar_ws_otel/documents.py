"""The JSON documents of stored sessions: what ``RecentSessionsProcessor.sessions()`` returns and
the panel's API serves.

The store keeps ``Session`` objects and the few facts it read from their spans; this module alone
decides how they look as JSON, so a new field of the panel's documents is added here and nowhere
else. It reads sessions, never the store, so the store can use it without a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from opentelemetry.trace import format_span_id, format_trace_id

from litestar_ws_otel.session import SessionState

if TYPE_CHECKING:
    from litestar_ws_otel.session import MessageRecord, Session

__all__ = ("StoredSession", "message_document", "session_document", "session_summary", "state_of")

_NS = 1e9


class StoredSession(Protocol):
    """A session as the store keeps it: the ``Session`` and what its span said about it."""

    @property
    def trace_id(self) -> int: ...
    @property
    def span_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def error_type(self) -> str | None:
        """The ended span's ``error.type`` when its status is ERROR; ``None`` otherwise."""

    @property
    def session(self) -> Session: ...


def state_of(session: Session) -> Literal["open", "closed"]:
    """``open`` until the connection is closed or its span ended."""
    return "open" if session.ended_ns is None and session.state is not SessionState.CLOSED else "closed"


def session_summary(stored: StoredSession) -> dict[str, Any]:
    """``session_document`` without ``messages``: what the panel's list and live socket need."""
    session = stored.session
    close = session.close
    error_type = stored.error_type
    return {
        "trace_id": format_trace_id(stored.trace_id),
        "span_id": format_span_id(stored.span_id),
        "name": stored.name,
        "route": session.route,
        "path": session.path,
        "state": state_of(session),
        "started_at": _seconds(session.started_ns),
        "accepted_at": _seconds(session.accepted_ns),
        "ended_at": _seconds(session.ended_ns),
        "exported_at": _seconds(session.exported_ns),
        "subprotocol": session.subprotocol,
        "handshake_status": session.handshake_status,
        "messages_received": session.messages_received,
        "messages_sent": session.messages_sent,
        "bytes_received": session.bytes_received,
        "bytes_sent": session.bytes_sent,
        "close_code": close.code if close else None,
        "close_reason": close.reason if close else None,
        "close_initiator": close.initiator if close else None,
        "status": "error" if error_type is not None else "unset",
        # The span's ``error.type``: the exception's qualified class name, else the close code.
        "error_type": error_type,
    }


def session_document(stored: StoredSession) -> dict[str, Any]:
    """One session as the panel's API serves it: its summary plus its kept messages, oldest first."""
    return {**session_summary(stored), "messages": [message_document(record) for record in stored.session.records()]}


def message_document(record: MessageRecord) -> dict[str, Any]:
    """One kept message as the panel's JSON document."""
    return {
        "direction": record.direction,
        "type": record.kind,
        "id": record.message_id,
        "size": record.size,
        "time": record.time_ns / _NS,
        "payload": record.payload,
        "truncated": record.truncated,
    }


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / _NS
