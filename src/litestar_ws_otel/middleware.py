"""ASGI middleware: one ``Session`` and one span per WebSocket connection.

It sits around the app's top-level exception handler, so it sees every WebSocket connection,
including those no route matched and the close that Litestar sends for a handler's exception.
The exception itself is seen where the handler raises it, by an ``after_exception`` hook.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
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
    from litestar_ws_otel.live_export import LiveExport, PendingExport
    from litestar_ws_otel.session import MessageRecord
    from litestar_ws_otel.statistics import SessionStatistics

__all__ = ("WebSocketTelemetryMiddleware", "current_session", "record_handler_exception")

_CURRENT: ContextVar[tuple[object, Session] | None] = ContextVar("litestar_ws_otel.session", default=None)
"""The connection being served in this context and its ``Session``; also marks it as instrumented.

A context variable, not a key of the scope or of ``scope["state"]``: those are the app's own
(``socket.scope``, ``socket.state``), which handlers read, count and serialise. The variable is
reset when the connection ends, on every path.
"""

_NO_STATUS = 1005
_ABNORMAL_CLOSURE = 1006
_SERVICE_RESTART = 1012
_NO_HANDSHAKE = spans.Handshake({}, {})


def current_session() -> Session | None:
    """The ``Session`` of the WebSocket connection served in the current context, if any."""
    current = _CURRENT.get()
    return None if current is None else current[1]


async def record_handler_exception(exc: Exception, scope: Scope) -> None:
    """``after_exception`` hook: Litestar turns the exception into a 4500 close, so catch it here first."""
    session = current_session()
    if session is not None:
        session.on_exception(exc)


def _connection_of(scope: Scope) -> object:
    """What identifies a connection across copies of its scope: the ``state`` dict they share."""
    return scope.get("state", scope)


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
        statistics: SessionStatistics,
        exclude: re.Pattern[str] | None = None,
        live_export: LiveExport | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.policy = policy
        self.owner = owner
        self.statistics = statistics
        self.live_export = live_export
        if exclude is not None:
            self.should_bypass_for_scope = lambda scope: exclude.search(scope["path"]) is not None
        # Litestar before 2.20 has no should_bypass_for_scope and would trace excluded paths: handle checks them.
        self._exclude = None if hasattr(ASGIMiddleware, "should_bypass_for_scope") else exclude

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self._exclude is not None and self._exclude.search(scope["path"]) is not None:
            await next_app(scope, receive, send)
            return
        connection_key = _connection_of(scope)
        current = _CURRENT.get()
        if current is not None and current[0] is connection_key:  # an outer instance serves it
            await next_app(scope, receive, send)
            return
        try:
            connection = _Connection(self, scope)
            self.statistics.opened(connection.session)
        except Exception as exc:
            report_once("could not start tracing a WebSocket connection", exc)
            await next_app(scope, receive, send)
            return
        marker = _CURRENT.set((connection_key, connection.session))
        escaped = False
        try:
            await next_app(scope, connection.receive_from(receive), connection.send_to(send))
        except Exception as exc:
            escaped = connection.session.on_exception(exc)
            raise
        finally:
            _CURRENT.reset(marker)
            connection.detach()
            connection.end(escaped=escaped)


class _Connection:
    """Per-connection glue: the wrapped ``receive``/``send`` feed the session; the span ends once."""

    __slots__ = ("_handshake", "_middleware", "_parent", "_pending", "_scope", "_task", "_token", "session", "span")

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
        self._task = _current_task()
        """The connection's own task: the only one that may make the session span current."""
        self._token: object | None = None
        self._pending: PendingExport | None = None

    def _attach(self) -> None:
        """Make the session span current in the connection's own task, so the handler's spans join it.

        Sends from other tasks (a channels task, a ``websocket_stream`` child) may start the span
        first; they never attach, since only this task's ``handle`` can detach again.
        """
        if self._token is None and self.span is not None and self._task is not None and _current_task() is self._task:
            self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def detach(self) -> None:
        """Restore the context the connection started with (in its own task, on every path)."""
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception as exc:
                report_once("could not restore the OpenTelemetry context after a WebSocket session", exc)

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
        live_export = self._middleware.live_export
        if live_export is not None and self.span.is_recording():
            self._pending = live_export.track(self.session, self.span)
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
                    self._attach()
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
                self._attach()
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

    def _unexported(self) -> tuple[list[MessageRecord] | None, int | None]:
        """The records the session span carries, and its ``websocket.events.dropped``.

        All kept records when nothing left early (``None``: the defaults); otherwise only those
        written since the last ``messages`` span, and the drops among them.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return None, None
        live_export = self._middleware.live_export
        if live_export is not None:
            live_export.untrack(pending)
        return pending.close()

    def end(self, *, escaped: bool) -> None:
        """End the span exactly once, whatever way the connection ended; count the session as closed first.

        The statistics are told before the span ends, so whoever sees the span ended (the panel,
        a test) sees the numbers that include it.
        """
        if not self.session.finish():
            return
        try:
            span = self.span if self.span is not None else self._start_span()
        except Exception as exc:
            report_once("could not start a WebSocket session span", exc)
            span = None
        server_error: str | None = None
        try:
            server_error = spans.server_error_type(self.session, escaped)
            self._middleware.statistics.closed(self.session, error_type=server_error)
        except Exception as exc:
            report_once("could not count a closed WebSocket session", exc)
        if span is not None:
            self._end_span(span, server_error)

    def _end_span(self, span: trace.Span, server_error: str | None) -> None:
        session = self.session
        if session.malformed_messages:
            report_once(
                "WebSocket messages whose payload was neither str nor bytes were not recorded",
                level=logging.DEBUG,
                detail=f"{session.malformed_messages} in one session",
            )
        try:
            if span.is_recording():  # a sampled-out session costs no event or attribute building
                records, dropped = self._unexported()
                spans.write_events(span, session, records)
                span.set_attributes(spans.end_attributes(session, dropped))
                spans.mark_error(span, session, server_error)
        except Exception as exc:
            report_once("could not record a WebSocket session's events", exc)
        finally:
            try:
                span.end(end_time=session.ended_ns)
            except Exception as exc:
                report_once("could not end a WebSocket session span", exc)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # not on an asyncio loop: never attach
        return None


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
