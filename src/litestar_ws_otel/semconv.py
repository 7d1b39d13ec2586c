"""Attribute, event and metric names of WebSocket sessions.

OpenTelemetry's semantic conventions have no ``websocket.*`` names, so ours are defined here in
the style of ``opentelemetry.semconv.attributes``; everything else comes from that package.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "WEBSOCKET_BYTES_RECEIVED",
    "WEBSOCKET_BYTES_SENT",
    "WEBSOCKET_CLOSE_CODE",
    "WEBSOCKET_CLOSE_INITIATOR",
    "WEBSOCKET_CLOSE_REASON",
    "WEBSOCKET_EVENTS_DROPPED",
    "WEBSOCKET_EVENT_ACCEPT",
    "WEBSOCKET_EVENT_CLOSE",
    "WEBSOCKET_EVENT_RECEIVE",
    "WEBSOCKET_EVENT_SEND",
    "WEBSOCKET_MESSAGES_RECEIVED",
    "WEBSOCKET_MESSAGES_SENT",
    "WEBSOCKET_MESSAGE_DIRECTION",
    "WEBSOCKET_MESSAGE_ID",
    "WEBSOCKET_MESSAGE_PAYLOAD",
    "WEBSOCKET_MESSAGE_SIZE",
    "WEBSOCKET_MESSAGE_TRUNCATED",
    "WEBSOCKET_MESSAGE_TYPE",
    "WEBSOCKET_SERVER_ACTIVE_CONNECTIONS",
    "WEBSOCKET_SERVER_BYTES",
    "WEBSOCKET_SERVER_CONNECTION_DURATION",
    "WEBSOCKET_SERVER_MESSAGES",
    "WEBSOCKET_SUBPROTOCOL",
)

WEBSOCKET_SUBPROTOCOL: Final = "websocket.subprotocol"
WEBSOCKET_MESSAGES_RECEIVED: Final = "websocket.messages.received"
WEBSOCKET_MESSAGES_SENT: Final = "websocket.messages.sent"
WEBSOCKET_BYTES_RECEIVED: Final = "websocket.bytes.received"
WEBSOCKET_BYTES_SENT: Final = "websocket.bytes.sent"
WEBSOCKET_CLOSE_CODE: Final = "websocket.close.code"
WEBSOCKET_CLOSE_REASON: Final = "websocket.close.reason"
WEBSOCKET_CLOSE_INITIATOR: Final = "websocket.close.initiator"
"""``client`` or ``server``: which side ended the connection."""
WEBSOCKET_EVENTS_DROPPED: Final = "websocket.events.dropped"
"""Messages counted but not kept as events because of ``max_messages_per_session``."""

WEBSOCKET_MESSAGE_TYPE: Final = "websocket.message.type"
WEBSOCKET_MESSAGE_ID: Final = "websocket.message.id"
"""Per-direction counter from 1, so gaps show which messages the event limit dropped."""
WEBSOCKET_MESSAGE_SIZE: Final = "websocket.message.size"
WEBSOCKET_MESSAGE_PAYLOAD: Final = "websocket.message.payload"
WEBSOCKET_MESSAGE_TRUNCATED: Final = "websocket.message.truncated"

WEBSOCKET_EVENT_ACCEPT: Final = "websocket.accept"
WEBSOCKET_EVENT_RECEIVE: Final = "websocket.receive"
WEBSOCKET_EVENT_SEND: Final = "websocket.send"
WEBSOCKET_EVENT_CLOSE: Final = "websocket.close"

WEBSOCKET_MESSAGE_DIRECTION: Final = "websocket.message.direction"
"""``received`` or ``sent``: a metric attribute (events tell it by their name)."""

# Metrics: experimental names in the style of the HTTP server metrics, until WebSocket conventions exist.
WEBSOCKET_SERVER_ACTIVE_CONNECTIONS: Final = "websocket.server.active_connections"
"""Connections accepted and not yet closed, by ``http.route``; unit ``{connection}``."""
WEBSOCKET_SERVER_CONNECTION_DURATION: Final = "websocket.server.connection.duration"
"""Seconds from the handshake to the close, by ``http.route``, ``websocket.close.code``, ``error.type``."""
WEBSOCKET_SERVER_MESSAGES: Final = "websocket.server.messages"
"""Messages, by ``http.route``, ``websocket.message.direction`` and ``websocket.message.type``."""
WEBSOCKET_SERVER_BYTES: Final = "websocket.server.bytes"
"""Payload bytes (UTF-8 length for text), by ``http.route`` and ``websocket.message.direction``."""
