"""The OpenTelemetry context key that carries a connection's ``Session`` to span processors.

The middleware starts the session span with a context holding the ``Session``; a span processor
(the recent-sessions store) reads it back in ``on_start``. Neither owns the key, so it lives here,
between them, and the data still flows one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import context as otel_context

from litestar_ws_otel.session import Session

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = ("context_with_session", "session_in")

_SESSION_KEY = otel_context.create_key("litestar_ws_otel.session")


def context_with_session(session: Session, parent: Context | None) -> Context:
    """The context to start a session span with, so that span processors can find the session."""
    return otel_context.set_value(_SESSION_KEY, session, parent)


def session_in(context: Context | None) -> Session | None:
    """The ``Session`` a span was started with, or ``None`` for any other span."""
    session = otel_context.get_value(_SESSION_KEY, context)
    return session if isinstance(session, Session) else None
