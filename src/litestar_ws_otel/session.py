"""One WebSocket connection's record: state, counters and a bounded ring of recent messages.

Nothing here knows OpenTelemetry or Litestar, so the per-message path stays a few attribute
updates and one ``struct.pack_into``; the span is built from this record once, when the session
ends.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from litestar_ws_otel.redaction import truncate_text, utf8_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar_ws_otel.config import Direction

__all__ = (
    "CloseInfo",
    "MessageRecord",
    "PreviewPolicy",
    "Session",
    "SessionState",
)

_DISCONNECTED_ABNORMALLY = 1006
_time_ns = time.time_ns

_RECORD = struct.Struct("<QqqQB")
"""One ring slot: sequence, time (ns), size (bytes), message id, flags. 33 bytes where a tuple,
its int and a deque slot cost about 140.

The sequence is the record's index among all records written: a reader checks it to know that
the slot still holds the record it expected."""
_SEQUENCE = struct.Struct("<Q")
_pack_record = _RECORD.pack_into
_unpack_record = _RECORD.unpack_from
_unpack_sequence = _SEQUENCE.unpack_from
_RECORD_SIZE = _RECORD.size
_SENT, _BINARY, _TRUNCATED = 1, 2, 4
_BINARY_TYPES = (bytes, bytearray, memoryview)


class SessionState(str, Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class MessageRecord(NamedTuple):
    """One message as read back from the ring: the one view of a record outside this module.

    The ring's packed layout (``_RECORD``) is private to this module; readers use these names.
    """

    time_ns: int
    direction: Direction
    kind: str  # "text" or "binary"
    message_id: int
    size: int
    payload: str | None
    truncated: bool


_new_record = tuple.__new__
"""Builds a ``MessageRecord`` from a tuple without the keyword-handling ``__new__``: half the cost."""


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How the connection ended."""

    code: int
    reason: str
    initiator: str  # "client" or "server"
    time_ns: int


@dataclass(frozen=True, slots=True)
class PreviewPolicy:
    """What of a payload is kept; resolved once per app so the hot path only reads fields."""

    capture_payloads: bool
    max_payload_bytes: int
    capture_binary_preview: bool
    binary_preview_bytes: int
    redact_payload: Callable[[str | bytes, Direction], str | bytes | None] | None = None
    on_redact_error: Callable[[BaseException], None] | None = None

    def preview(self, payload: str | bytes, direction: Direction) -> tuple[str | None, bool]:
        """Return ``(preview, truncated)``; previews slice only what they keep."""
        if not self.capture_payloads:
            return None, False
        if isinstance(payload, (bytes, bytearray, memoryview)) and not self.capture_binary_preview:
            return None, False
        if self.redact_payload is not None:
            try:
                redacted = self.redact_payload(payload, direction)
                if redacted is not None and not isinstance(redacted, (str, bytes)):
                    raise TypeError(f"redact_payload must return str, bytes or None, got {type(redacted).__name__}")
            except Exception as exc:  # a broken hook fails closed: no preview, never a broken app
                if self.on_redact_error is not None:
                    self.on_redact_error(exc)
                return None, False
            if redacted is None:
                return None, False
            payload = redacted
        if isinstance(payload, str):
            return truncate_text(payload, self.max_payload_bytes)
        limit = self.binary_preview_bytes
        return bytes(payload[:limit]).hex(), len(payload) > limit


class Session:
    """The state of one WebSocket connection, updated by the middleware as messages pass.

    Counters count every message; the ring keeps the newest ``max_messages`` of them, packed in
    one ``bytearray`` (plus a list of previews when payloads are captured), so a full ring of
    a hundred messages costs about 3 KiB rather than 14. It is allocated at the first message.

    Written by one connection's task, without a lock; readers on other threads take a snapshot
    with ``records()``. Each slot carries its record's sequence number, written before its
    preview; a reader takes a slot only if the sequence is the one it expected both before and
    after reading the preview. The ring has one slot more than it keeps, so the slot being
    written never holds a record a reader expects.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_close_guessed",
        "_policy",
        "_previews",
        "_slots",
        "_whole_text_limit",
        "_written",
        "accepted_ns",
        "binary_received",
        "binary_sent",
        "bytes_received",
        "bytes_sent",
        "close",
        "denial_status",
        "ended_ns",
        "exception",
        "exception_ns",
        "exported_ns",
        "malformed_messages",
        "max_messages",
        "messages_received",
        "messages_sent",
        "owner",
        "path",
        "route",
        "started_ns",
        "state",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        policy: PreviewPolicy,
        max_messages: int,
        path: str = "",
        route: str | None = None,
        owner: object | None = None,
        started_ns: int | None = None,
    ) -> None:
        self._policy = policy
        self._whole_text_limit = (
            policy.max_payload_bytes if policy.capture_payloads and policy.redact_payload is None else -1
        )
        self.max_messages = max_messages
        self._slots = max_messages + 1
        self._buffer: bytearray | None = None
        self._previews: list[str | None] | None = None
        self._written = 0
        """Records written so far; the next goes to slot ``_written % _slots``."""
        self._close_guessed = False
        """Whether ``close`` is the 1006 a failed send assumed, which a reported close replaces."""
        self.path = path
        self.route = route
        self.owner = owner
        self.state = SessionState.CONNECTING
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self.accepted_ns: int | None = None
        self.ended_ns: int | None = None
        self.subprotocol: str | None = None
        self.denial_status: int | None = None
        self.close: CloseInfo | None = None
        self.exception: BaseException | None = None
        self.exception_ns: int | None = None
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.binary_received = 0
        """Binary messages among ``messages_received``; the rest were text."""
        self.binary_sent = 0
        """Binary messages among ``messages_sent``."""
        self.malformed_messages = 0
        """Messages whose payload was neither ``str`` nor bytes: not counted, sized or kept."""
        self.exported_ns: int | None = None
        """When messages of this open session last left early, in a ``messages`` span."""

    @property
    def messages_dropped(self) -> int:
        """Messages counted but no longer (or never) in the ring."""
        return self.messages_received + self.messages_sent - min(self._written, self.max_messages)

    @property
    def handshake_status(self) -> int | None:
        """The HTTP status of the handshake: 101 once accepted, else the denial's (403 for a close
        before accept); ``None`` while it is still pending."""
        if self.accepted_ns is not None:
            return 101
        return self.denial_status

    @property
    def written(self) -> int:
        """Records written so far: the sequence number the next record will get."""
        return self._written

    def records(self) -> list[MessageRecord]:
        """A snapshot of the ring, oldest first; safe to call from another thread."""
        return self.records_since(0)[0]

    def records_since(self, sequence: int) -> tuple[list[MessageRecord], int]:
        """The kept records written at or after ``sequence``, oldest first, and the next sequence.

        A reader that remembers the returned sequence gets each record at most once; records
        between the two sequences that are not returned were pushed out of the ring. Safe to call
        from another thread: read newest first, a slot that a writer has reused meanwhile ends
        the read, since every older slot is reused before it. A snapshot never mixes two records.
        """
        buffer, previews, slots = self._buffer, self._previews, self._slots
        written = self._written
        records: list[MessageRecord] = []
        if buffer is None:
            return records, written
        for index in range(written - 1, max(sequence, written - self.max_messages) - 1, -1):
            slot = index % slots
            offset = slot * _RECORD_SIZE
            sequence, time_ns, size, message_id, flags = _unpack_record(buffer, offset)
            preview = None if previews is None else previews[slot]
            if sequence != index or _unpack_sequence(buffer, offset)[0] != sequence:
                break
            records.append(
                _new_record(
                    MessageRecord,
                    (
                        time_ns,
                        "sent" if flags & _SENT else "received",
                        "binary" if flags & _BINARY else "text",
                        message_id,
                        size,
                        preview,
                        bool(flags & _TRUNCATED),
                    ),
                )
            )
        records.reverse()
        return records, written

    def on_accept(self, subprotocol: str | None) -> None:
        if self.state is SessionState.CONNECTING:
            self.state = SessionState.OPEN
            self.accepted_ns = time.time_ns()
            self.subprotocol = subprotocol

    def on_message(self, direction: Direction, payload: str | bytes) -> None:
        """Count one message and keep its record; the hot path of the whole package.

        The packed record (with its sequence) goes in before the preview, the order
        ``records`` relies on to read from another thread without a lock.
        """
        if type(payload) is str:
            flags = 0
            if payload.isascii():
                size = len(payload)
                whole_text = payload if size <= self._whole_text_limit else None
            else:
                size = utf8_size(payload)
                whole_text = None
        elif isinstance(payload, _BINARY_TYPES):
            flags = _BINARY
            size = len(payload)
            whole_text = None
        else:  # ASGI forbids it, yet apps and test clients send a dict as "text": not a message we can size
            self.malformed_messages += 1
            return
        if direction == "received":
            self.messages_received += 1
            self.bytes_received += size
            message_id = self.messages_received
            if flags:  # binary: nothing else is set yet
                self.binary_received += 1
        else:
            if flags:
                self.binary_sent += 1
            flags |= _SENT
            self.messages_sent += 1
            self.bytes_sent += size
            message_id = self.messages_sent
        buffer = self._buffer
        if buffer is None:
            buffer = self._allocate()
        written = self._written
        slot = written % self._slots
        previews = self._previews
        preview = whole_text  # short ASCII text is its own preview: no slicing, no copy
        if previews is not None and whole_text is None:
            preview, truncated = self._policy.preview(payload, direction)
            if truncated:
                flags |= _TRUNCATED
        _pack_record(buffer, slot * _RECORD_SIZE, written, _time_ns(), size, message_id, flags)
        if previews is not None:
            previews[slot] = preview
        self._written = written + 1

    def _allocate(self) -> bytearray:
        """The ring's storage, made at the first message: connections that send none cost nothing here.

        The preview list comes first, so a reader that sees the buffer sees the previews too.
        """
        if self._policy.capture_payloads:
            self._previews = [None] * self._slots
        self._buffer = bytearray(_RECORD_SIZE * self._slots)
        return self._buffer

    def on_close(self, code: int, reason: str, initiator: str) -> None:
        """Record the first close only: a late close after a disconnect does not rewrite history.

        The one exception is the guess a failed send made (``on_client_gone``): the close the
        server reports afterwards is what really happened.
        """
        if self.close is None or self._close_guessed:
            self.close = CloseInfo(code=code, reason=reason, initiator=initiator, time_ns=time.time_ns())
            self._close_guessed = False
        self.state = SessionState.CLOSED

    def on_client_gone(self) -> None:
        """A send failed because the client is gone: 1006 (closed without a close frame), unless a
        close frame turns up when the server reports the disconnect.

        A client that closes normally while the app sends (a broadcast racing the close) makes the
        send fail before the app has read the client's close frame.
        """
        if self.close is None:
            self.on_close(_DISCONNECTED_ABNORMALLY, "", "client")
            self._close_guessed = True

    def on_denial(self, status: int) -> None:
        if self.denial_status is None:
            self.denial_status = status
        self.state = SessionState.CLOSED

    def on_exception(self, exc: BaseException) -> bool:
        """Keep the first exception: the one the handler raised, not what cleanup raised after it.

        Returns ``False`` for an ``OSError`` after the client has left: that is how the server
        reports a send to a gone client (uvicorn's ``ClientDisconnected``), not a server failure.
        """
        if isinstance(exc, OSError) and self.close is not None and self.close.initiator == "client":
            return False
        if self.exception is None:
            self.exception = exc
            self.exception_ns = time.time_ns()
        return True

    def finish(self) -> bool:
        """Mark the session ended; returns ``False`` if it already was, so a span ends only once."""
        if self.ended_ns is not None:
            return False
        self.ended_ns = time.time_ns()
        self.state = SessionState.CLOSED
        return True
