"""Turn a connection's scope and its finished ``Session`` into the session span's attributes and events."""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from litestar.exceptions import HTTPException, WebSocketDisconnect, WebSocketException
from opentelemetry import propagate
from opentelemetry.semconv.attributes import (
    client_attributes,
    error_attributes,
    http_attributes,
    network_attributes,
    server_attributes,
    url_attributes,
    user_agent_attributes,
)
from opentelemetry.trace import Status, StatusCode

from litestar_ws_otel import semconv
from litestar_ws_otel.redaction import decode_header, header_value, is_credential_name, redact_query

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import Scope
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span
    from opentelemetry.util.types import Attributes

    from litestar_ws_otel.config import WebSocketTelemetryConfig
    from litestar_ws_otel.session import MessageRecord, Session

__all__ = (
    "Handshake",
    "counter_attributes",
    "end_attributes",
    "error_type",
    "is_server_error",
    "mark_error",
    "primary_exception",
    "read_handshake",
    "route_of",
    "server_error_type",
    "span_name",
    "write_events",
    "write_message_events",
)

_INTERNAL_ERROR = 1011
_LITESTAR_SERVER_ERRORS = range(4500, 4600)
_HTTP_SERVER_ERROR = 500


def route_of(scope: Scope) -> str | None:
    """The route template with ``root_path``; ``None`` when routing did not match."""
    template = scope.get("path_template")
    if not isinstance(template, str):
        return None
    return f"{scope.get('root_path', '').rstrip('/')}{template}"


def span_name(route: str | None) -> str:
    """``WS {route}``, never the raw path: paths hold ids and would explode span cardinality."""
    return f"WS {route}" if route else "WS"


class Handshake(NamedTuple):
    """What the span needs from the handshake, read in one pass over its headers."""

    attributes: dict[str, Any]
    """The span's start attributes: handshake facts, allow-listed headers with secrets redacted."""
    carrier: dict[str, str]
    """The trace context headers the global propagator reads (``traceparent``, ``baggage``), if sent."""


def read_handshake(scope: Scope, path: str, config: WebSocketTelemetryConfig) -> Handshake:
    """Walk the headers once: every connection pays for this, sampled or not."""
    attributes: dict[str, Any] = {
        http_attributes.HTTP_REQUEST_METHOD: "GET",
        url_attributes.URL_SCHEME: scope.get("scheme") or "ws",
        url_attributes.URL_PATH: path,
        network_attributes.NETWORK_PROTOCOL_NAME: "websocket",
        network_attributes.NETWORK_PROTOCOL_VERSION: "13",
    }
    query = scope.get("query_string") or b""
    if query:
        attributes[url_attributes.URL_QUERY] = redact_query(
            decode_header(query), config.redact_query_params, credential_rule=config.redact_credential_names
        )
    plan = _header_plan(
        config.capture_headers, config.redact_headers, config.redact_credential_names, propagate.get_global_textmap()
    )
    host = user_agent = None
    captured: dict[bytes, list[str]] = {}
    carrier: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = raw_name.lower()
        use = plan.get(name)
        if use is None:
            continue
        if use & _HOST:
            host = decode_header(raw_value)
        elif use & _USER_AGENT:
            user_agent = decode_header(raw_value)
        if use & _CAPTURE:
            captured.setdefault(name, []).append(header_value(name, raw_value, secret=bool(use & _SECRET)))
        if use & _PROPAGATION:
            key, value = decode_header(name), decode_header(raw_value)
            carrier[key] = f"{carrier[key]},{value}" if key in carrier else value
    _add_server_address(attributes, host, scope.get("server"))
    client = scope.get("client")
    if client:
        attributes[client_attributes.CLIENT_ADDRESS] = str(client[0])
        if client[1] is not None:
            attributes[client_attributes.CLIENT_PORT] = int(client[1])
    if user_agent:
        attributes[user_agent_attributes.USER_AGENT_ORIGINAL] = user_agent
    for name, values in captured.items():
        attributes[f"http.request.header.{decode_header(name)}"] = tuple(values)
    return Handshake(attributes, carrier)


_HOST, _USER_AGENT, _CAPTURE, _SECRET, _PROPAGATION = 1, 2, 4, 8, 16


@lru_cache(maxsize=64)
def _header_plan(
    capture: tuple[str, ...], redact: tuple[str, ...], credential_rule: bool, textmap: TextMapPropagator
) -> dict[bytes, int]:
    """What to do with each header name, as ASGI carries it (Latin-1 bytes): one lookup per header.

    Computed once per configuration and global propagator; the propagator's own fields are read
    so that only its headers (never cookies or tokens) reach ``extract``. A captured header is
    secret when listed in ``redact`` or, with ``credential_rule``, when its name looks like a
    credential's (``x-auth-token``).
    """
    plan: dict[bytes, int] = {b"host": _HOST, b"user-agent": _USER_AGENT}

    def mark(names: Iterable[str], flag: int) -> None:
        for name in names:
            key = name.lower().encode("latin-1")
            plan[key] = plan.get(key, 0) | flag

    mark(capture, _CAPTURE)
    mark((name for name in capture if name in redact or (credential_rule and is_credential_name(name))), _SECRET)
    mark(getattr(textmap, "fields", ()), _PROPAGATION)
    return plan


def _add_server_address(attributes: dict[str, Any], host: str | None, server: Any) -> None:
    """``server.address``/``port`` from the Host header, as clients named the server; else the socket."""
    if host:
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name:
            name, port = host, ""
        # An IPv6 literal is bracketed in a Host header; server.address is the address itself, as
        # the socket gives it.
        attributes[server_attributes.SERVER_ADDRESS] = name[1:-1] if name.startswith("[") else name
        if port.isdigit():
            attributes[server_attributes.SERVER_PORT] = int(port)
        return
    if server:
        attributes[server_attributes.SERVER_ADDRESS] = str(server[0])
        if server[1] is not None:
            attributes[server_attributes.SERVER_PORT] = int(server[1])


def primary_exception(exc: BaseException) -> BaseException:
    """The exception that tells what happened; for an exception group, the first real error in it.

    Handlers that read inside a task group (anyio, ``asyncio.TaskGroup``) get a client's
    ``WebSocketDisconnect`` wrapped in a group. A group of disconnects only is the client leaving:
    its first disconnect is the primary exception.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = list(_leaves(exc))
    return next((leaf for leaf in leaves if not isinstance(leaf, WebSocketDisconnect)), leaves[0] if leaves else exc)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def is_server_error(session: Session, escaped: bool) -> bool:
    """Whether the server failed, as opposed to the client misbehaving or leaving.

    Litestar closes with 4500 for every exception that is not a ``WebSocketException``, including
    ``NotFoundException``, so the exception's own class decides when there is one.
    """
    exc = None if session.exception is None else primary_exception(session.exception)
    if exc is not None:
        if isinstance(exc, WebSocketException):
            return exc.code == _INTERNAL_ERROR or exc.code in _LITESTAR_SERVER_ERRORS
        if isinstance(exc, HTTPException):
            return exc.status_code >= _HTTP_SERVER_ERROR
        return True
    if escaped:
        return True
    close = session.close
    return (
        close is not None
        and close.initiator == "server"
        and (close.code == _INTERNAL_ERROR or close.code in _LITESTAR_SERVER_ERRORS)
    )


def counter_attributes(session: Session, dropped: int) -> dict[str, Any]:
    """The session's counters so far, and ``dropped``: messages of this span's stretch kept as no event."""
    return {
        semconv.WEBSOCKET_MESSAGES_RECEIVED: session.messages_received,
        semconv.WEBSOCKET_MESSAGES_SENT: session.messages_sent,
        semconv.WEBSOCKET_BYTES_RECEIVED: session.bytes_received,
        semconv.WEBSOCKET_BYTES_SENT: session.bytes_sent,
        semconv.WEBSOCKET_EVENTS_DROPPED: dropped,
    }


def end_attributes(session: Session, dropped: int | None = None) -> dict[str, Any]:
    """What the session span carries at its end; ``dropped`` defaults to every message not in the ring."""
    attributes = counter_attributes(session, session.messages_dropped if dropped is None else dropped)
    status_code = session.handshake_status
    if status_code is not None:
        attributes[http_attributes.HTTP_RESPONSE_STATUS_CODE] = status_code
    if session.subprotocol:
        attributes[semconv.WEBSOCKET_SUBPROTOCOL] = session.subprotocol
    if session.close is not None:
        attributes[semconv.WEBSOCKET_CLOSE_CODE] = session.close.code
        attributes[semconv.WEBSOCKET_CLOSE_REASON] = session.close.reason
        attributes[semconv.WEBSOCKET_CLOSE_INITIATOR] = session.close.initiator
    return attributes


def error_type(session: Session) -> str:
    """The span's ``error.type``: the primary exception's qualified class name, else the close code."""
    exc = None if session.exception is None else primary_exception(session.exception)
    if exc is None:
        return str(session.close.code) if session.close is not None else "_OTHER"
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def write_events(span: Span, session: Session, records: Iterable[MessageRecord] | None = None) -> None:
    """Add message records and lifecycle events in time order, each at its own timestamp.

    ``records`` defaults to every record the ring keeps; a session whose earlier records already
    left in ``messages`` spans passes the ones written since.
    """
    lifecycle = _lifecycle(session)
    pending = 0
    next_ns = lifecycle[0][0] if lifecycle else None
    add_event = span.add_event
    for record in session.records() if records is None else records:
        time_ns = record.time_ns
        while next_ns is not None and next_ns <= time_ns:
            _emit(span, *lifecycle[pending])
            pending += 1
            next_ns = lifecycle[pending][0] if pending < len(lifecycle) else None
        add_event(*_message_event(record))
    for event in lifecycle[pending:]:
        _emit(span, *event)


def write_message_events(span: Span, records: Iterable[MessageRecord]) -> None:
    """Add message records as events, each at its own timestamp (a ``messages`` span's events)."""
    add_event = span.add_event
    for record in records:
        add_event(*_message_event(record))


def _message_event(record: MessageRecord) -> tuple[str, dict[str, Any], int]:
    """``(name, attributes, timestamp)`` of one message's event."""
    attributes: dict[str, Any] = {
        semconv.WEBSOCKET_MESSAGE_TYPE: record.kind,
        semconv.WEBSOCKET_MESSAGE_ID: record.message_id,
        semconv.WEBSOCKET_MESSAGE_SIZE: record.size,
    }
    if record.payload is not None:
        attributes[semconv.WEBSOCKET_MESSAGE_PAYLOAD] = record.payload
        attributes[semconv.WEBSOCKET_MESSAGE_TRUNCATED] = record.truncated
    name = semconv.WEBSOCKET_EVENT_RECEIVE if record.direction == "received" else semconv.WEBSOCKET_EVENT_SEND
    return name, attributes, record.time_ns


def _lifecycle(session: Session) -> list[tuple[int, str, Attributes, BaseException | None]]:
    events: list[tuple[int, str, Attributes, BaseException | None]] = []
    if session.accepted_ns is not None:
        events.append((session.accepted_ns, semconv.WEBSOCKET_EVENT_ACCEPT, None, None))
    exc = session.exception
    if (
        exc is not None
        and not isinstance(primary_exception(exc), WebSocketDisconnect)
        and session.exception_ns is not None
    ):
        events.append((session.exception_ns, "exception", None, exc))
    close = session.close
    if close is not None:
        attributes: Attributes = {
            semconv.WEBSOCKET_CLOSE_CODE: close.code,
            semconv.WEBSOCKET_CLOSE_REASON: close.reason,
            semconv.WEBSOCKET_CLOSE_INITIATOR: close.initiator,
        }
        events.append((close.time_ns, semconv.WEBSOCKET_EVENT_CLOSE, attributes, None))
    events.sort(key=lambda event: event[0])
    return events


def _emit(span: Span, time_ns: int, name: str, attributes: Attributes, exc: BaseException | None) -> None:
    if exc is not None:
        span.record_exception(exc, timestamp=time_ns)
    else:
        span.add_event(name, attributes, time_ns)


def server_error_type(session: Session, escaped: bool) -> str | None:
    """The session's ``error.type`` when the server failed (``is_server_error``), else ``None``."""
    return error_type(session) if is_server_error(session, escaped) else None


def mark_error(span: Span, session: Session, server_error: str | None) -> None:
    """Status ERROR with ``error.type`` when ``server_error`` is set; the status stays unset otherwise."""
    if server_error is not None:
        span.set_attribute(error_attributes.ERROR_TYPE, server_error)
        description = repr(session.exception) if session.exception is not None else None
        span.set_status(Status(StatusCode.ERROR, description))
