"""ASGI middleware: one ``Session`` and one span per WebSocket connection.

It sits around the app's top-level exception handler, so it sees every WebSocket connection,
including those no route matched and the close that Litestar sends for a handler's exception.
The exception itself is seen where the handler raises it, by an ``after_exception`` hook.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.semconv.attributes import http_attributes, url_attributes

from litestar_ws_otel import spans
from litestar_ws_otel.redaction import redact_subprotocols
from litestar_ws_otel.reporting import report_once
from litestar_ws_otel.session import PreviewPolicy, Session, SessionState
from litestar_ws_otel.session_context import context_with_session

if TYPE_CHECKING:
    import re

    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

    from litestar_ws_otel.config import WebSocketTelemetryConfig

__all__ = ("SCOPE_STATE_KEY", "WebSocketTelemetryMiddleware", "record_handler_exception")

SCOPE_STATE_KEY = "litestar_ws_otel.session"
"""Where the connection's ``Session`` lives in ``scope["state"]``; also marks it as instrumented."""

_NO_STATUS = 1005
_ABNORMAL_CLOSURE = 1006
_SERVICE_RESTART = 1012
_NO_HANDSHAKE = spans.Handshake({}, {})


async def record_handler_exception(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: Litestar turns the exception into a 4500 close, so catch it here first."""
    session = scope.get("state", {}).get(SCOPE_STATE_KEY)
    if isinstance(session, Session):
        session.on_exception(exc)


class WebSocketTelemetryMiddleware(ASGIMiddleware):
    """Wraps ``receive`` and ``send`` of WebSocket connections; other scopes pass untouched."""

    scopes = (ScopeType.WEBSOCKET,)

    def __init__(
        self,
        *,
        config: WebSocketTelemetryConfig,
        tracer: trace.Tracer,
        policy: PreviewPolicy,
        owner: object,
        exclude: re.Pattern[str] | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.policy = policy
        self.owner = owner
        if exclude is not None:
            self.should_bypass_for_scope = lambda scope: exclude.search(scope["path"]) is not None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        if SCOPE_STATE_KEY in state:
            await next_app(scope, receive, send)
            return
        try:
            connection = _Connection(self, scope)
        except Exception as exc:
            report_once("could not start tracing a WebSocket connection", exc)
            await next_app(scope, receive, send)
            return
        state[SCOPE_STATE_KEY] = connection.session
        escaped = False
        try:
            await next_app(scope, connection.receive_from(receive), connection.send_to(send))
        except Exception as exc:
            escaped = connection.session.on_exception(exc)
            raise
        finally:
            connection.end(escaped=escaped)


class _Connection:
    """Per-connection glue: the wrapped ``receive``/``send`` feed the session; the span ends once."""

    __slots__ = ("_handshake", "_middleware", "_parent", "_scope", "session", "span")

    def __init__(self, middleware: WebSocketTelemetryMiddleware, scope: Scope) -> None:
        started_ns = time.time_ns()
        config = middleware.config
        path = scope.get("path", "")
        self._handshake = spans.read_handshake(scope, path, config)
        query = self._handshake.attributes.get(url_attributes.URL_QUERY)
        self._middleware = middleware
        self._scope = scope
        self._parent = otel_context.get_current()
        self.session = Session(
            policy=middleware.policy,
            max_messages=config.max_messages_per_session,
            path=f"{path}?{query}" if query else path,  # the panel shows the redacted query too
            owner=middleware.owner,
            started_ns=started_ns,
        )
        self.span: trace.Span | None = None

    def _start_span(self) -> trace.Span:
        """Start the span on first use, after routing, so it is named by its route template."""
        handshake = self._handshake
        route = spans.route_of(self._scope)
        self.session.route = route
        attributes = handshake.attributes
        if route:
            attributes[http_attributes.HTTP_ROUTE] = route
        parent = self._parent
        parent_context = trace.get_current_span(parent).get_span_context()
        if parent_context.is_valid and not parent_context.is_remote:
            kind = trace.SpanKind.INTERNAL
        else:
            kind = trace.SpanKind.SERVER
            if handshake.carrier:  # a non-browser client sent its trace context
                parent = propagate.extract(handshake.carrier, parent)
        self.span = self._middleware.tracer.start_span(
            spans.span_name(route),
            context=context_with_session(self.session, parent),
            kind=kind,
            attributes=attributes,
            start_time=self.session.started_ns,
        )
        self._handshake = _NO_HANDSHAKE  # the SDK copied the attributes; keep no second copy per connection
        return self.span

    def receive_from(self, receive: Receive) -> Receive:
        session = self.session

        async def wrapped_receive() -> ReceiveMessage:
            received = await receive()
            message: dict[str, Any] = received  # type: ignore[assignment]
            try:
                message_type = message["type"]
                if message_type == "websocket.receive":  # after accept, so after the span started
                    text = message.get("text")
                    session.on_message("received", text if text is not None else message.get("bytes") or b"")
                    return received
                if self.span is None:
                    self._start_span()
                if message_type == "websocket.disconnect":
                    session.on_close(*_disconnect_close(message))
                elif message_type != "websocket.connect":
                    report_once(
                        "unexpected ASGI message from the server", level=logging.DEBUG, detail=repr(message_type)
                    )
            except Exception as exc:
                report_once("could not record a received WebSocket message", exc)
            return received

        return wrapped_receive

    def send_to(self, send: Send) -> Send:
        session = self.session

        async def wrapped_send(sent: Message) -> None:
            try:
                await send(sent)
            except OSError:
                # uvicorn's ClientDisconnected is an OSError: the client left without a close frame.
                session.on_client_gone()
                raise
            message: dict[str, Any] = sent  # type: ignore[assignment]
            try:
                message_type = message["type"]
                if message_type == "websocket.send":  # after accept, so after the span started
                    text = message.get("text")
                    session.on_message("sent", text if text is not None else message.get("bytes") or b"")
                    return
                if self.span is None:
                    self._start_span()
                if message_type == "websocket.accept":
                    subprotocol = message.get("subprotocol")
                    session.on_accept(redact_subprotocols(subprotocol) if subprotocol else None)
                elif message_type == "websocket.close":
                    if session.state is SessionState.CONNECTING:
                        session.on_denial(403)
                    session.on_close(message.get("code", 1000), message.get("reason") or "", "server")
                elif message_type == "websocket.http.response.start":
                    session.on_denial(int(message["status"]))
                elif message_type != "websocket.http.response.body":
                    report_once("unexpected ASGI message from the app", level=logging.DEBUG, detail=repr(message_type))
            except Exception as exc:
                report_once("could not record a sent WebSocket message", exc)

        return wrapped_send

    def end(self, *, escaped: bool) -> None:
        """End the span exactly once, whatever way the connection ended."""
        session = self.session
        if not session.finish():
            return
        try:
            span = self.span if self.span is not None else self._start_span()
        except Exception as exc:
            report_once("could not start a WebSocket session span", exc)
            return
        if session.malformed_messages:
            report_once(
                "WebSocket messages whose payload was neither str nor bytes were not recorded",
                level=logging.DEBUG,
                detail=f"{session.malformed_messages} in one session",
            )
        try:
            if span.is_recording():  # a sampled-out session costs no event or attribute building
                spans.write_events(span, session)
                span.set_attributes(spans.end_attributes(session))
                spans.set_status(span, session, escaped)
        except Exception as exc:
            report_once("could not record a WebSocket session's events", exc)
        finally:
            try:
                span.end(end_time=session.ended_ns)
            except Exception as exc:
                report_once("could not end a WebSocket session span", exc)


def _disconnect_close(message: dict[str, Any]) -> tuple[int, str, str]:
    """``(code, reason, initiator)`` of a ``websocket.disconnect`` as the span should tell it.

    uvicorn reports a lost TCP connection as 1005 without a ``reason`` key, while a real close
    frame always comes with one; RFC 6455 calls a close without a close frame 1006. A 1012
    (service restart) is the server shutting down, whatever side the message arrives on.
    """
    code = message.get("code", _NO_STATUS)
    if code == _NO_STATUS and "reason" not in message:
        code = _ABNORMAL_CLOSURE
    return code, message.get("reason") or "", "server" if code == _SERVICE_RESTART else "client"
