"""The context key that carries a connection's ``Session`` from the middleware to span processors."""

from __future__ import annotations

from opentelemetry import context as otel_context

from litestar_ws_otel import session_context
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.session_context import context_with_session, session_in

POLICY = PreviewPolicy(
    capture_payloads=False, max_payload_bytes=8, capture_binary_preview=False, binary_preview_bytes=8
)


def test_the_session_context_keeps_what_its_parent_carried() -> None:
    """The session span's context is the parent's plus the session: the trace it continues stays."""
    key = otel_context.create_key("parent-value")
    parent = otel_context.set_value(key, "kept")
    session = Session(policy=POLICY, max_messages=1)
    context = context_with_session(session, parent)
    assert session_in(context) is session
    assert otel_context.get_value(key, context) == "kept"
    assert session_in(parent) is None


def test_anything_but_a_session_under_the_key_is_no_session() -> None:
    context = otel_context.set_value(session_context._SESSION_KEY, "not a session")
    assert session_in(context) is None
    assert session_in(None) is None
