"""The panel's live stream: server-sent events carrying deltas of the recent-sessions store.

The stream polls the store a few times a second and diffs it against what this stream already
sent. Nothing is added to the WebSocket hot path: a connection's task only appends to its ring,
whether zero or ten panels are open.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.background_tasks import BackgroundTask
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from litestar.serialization import encode_json

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from litestar_ws_otel.processor import RecentSessionsProcessor

__all__ = (
    "HEARTBEAT_SECONDS",
    "POLL_SECONDS",
    "RETRY_MILLISECONDS",
    "StreamCounter",
    "diff",
    "event_stream",
    "session_events",
)

POLL_SECONDS = 0.25
"""How often a stream looks at the store: deltas reach the browser within about this long."""
HEARTBEAT_SECONDS = 15.0
"""A comment after this long without events keeps proxies from closing an idle stream."""
RETRY_MILLISECONDS = 2000
"""How soon ``EventSource`` reconnects after the stream breaks."""

_COUNTERS = ("messages_received", "messages_sent", "bytes_received", "bytes_sent")


@dataclass
class StreamCounter:
    """The streams one app's panel is serving; read by tests and by anyone wondering who listens."""

    live: int = 0
    """Streams whose generator is still running: back to zero once every browser has gone."""
    opened: int = 0
    """Streams started since the app started."""
    events: int = 0
    """Events (not comments) produced by all streams."""


@dataclass(slots=True)
class _Cursor:
    """What one stream has told its browser about one session."""

    received: int
    """The last received-message id sent; ids count per direction from 1."""
    sent: int
    """The last sent-message id sent."""
    counters: tuple[int, ...]
    """Message and byte counters as last sent: a change means a ``messages`` event is due."""
    closed: bool
    """Whether ``session_closed`` was sent (or the session was closed in the snapshot)."""


def event_stream(
    processor: RecentSessionsProcessor,
    counter: StreamCounter,
    *,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> ServerSentEvent:
    """The ``text/event-stream`` response for ``GET {panel_path}/api/stream``.

    Litestar cancels the sending task when the browser disconnects; if the generator was parked
    at a ``yield`` then, nothing would resume it, so the response's background task closes it
    explicitly and the stream is counted as gone at once rather than at garbage collection.
    """
    events = session_events(
        processor, counter, poll_seconds=poll_seconds, heartbeat_seconds=heartbeat_seconds, sleep=sleep
    )

    async def close() -> None:
        # A coroutine function, not ``events.aclose`` itself: Litestar would take that builtin
        # method for a sync callable and never await what it returns.
        await events.aclose()

    return ServerSentEvent(events, background=BackgroundTask(close))


async def session_events(
    processor: RecentSessionsProcessor,
    counter: StreamCounter,
    *,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """A ``snapshot`` event, then deltas: ``session_opened``, ``messages``, ``session_closed``, ``session_evicted``.

    Memory stays bounded for a slow browser because nothing is queued: the response pulls the next
    event only after the previous one was sent, and only then does this generator look at the
    store again. Whatever happened meanwhile becomes one delta per session, at most the messages
    the ring still holds, so a browser that stops reading costs one tick's events, not a backlog.

    Args:
        processor: The store to watch.
        counter: Updated as the stream starts, yields and ends.
        poll_seconds: Time between looks at the store.
        heartbeat_seconds: Silence after which a comment is sent.
        sleep: The wait between polls; tests pass one they control.
    """
    counter.live += 1
    counter.opened += 1
    try:
        summaries = processor.summaries()
        cursors = {summary["span_id"]: _seen(summary) for summary in summaries}
        counter.events += 1
        yield _event("snapshot", {"sessions": summaries}, retry=RETRY_MILLISECONDS)
        quiet_since = time.monotonic()
        while True:
            await sleep(poll_seconds)
            events = diff(processor, cursors)
            for event in events:
                counter.events += 1
                yield event
            if events:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat_seconds:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                quiet_since = time.monotonic()
    finally:
        counter.live -= 1


def diff(processor: RecentSessionsProcessor, cursors: dict[str, _Cursor]) -> list[ServerSentEventMessage]:
    """The events that bring a browser from ``cursors`` to the store's present; updates ``cursors``.

    Sessions are visited oldest first, so ``session_opened`` events arrive in start order.
    """
    events: list[ServerSentEventMessage] = []
    summaries = processor.summaries()
    present = {summary["span_id"] for summary in summaries}
    for span_id in [span_id for span_id in cursors if span_id not in present]:
        del cursors[span_id]
        events.append(_event("session_evicted", {"span_id": span_id}))
    for summary in reversed(summaries):
        span_id = summary["span_id"]
        cursor = cursors.get(span_id)
        if cursor is None:
            cursor = cursors[span_id] = _Cursor(received=0, sent=0, counters=(0, 0, 0, 0), closed=False)
            events.append(_event("session_opened", summary))
        counters = tuple(summary[name] for name in _COUNTERS)
        if counters != cursor.counters:
            messages = processor.messages_since(span_id, received_after=cursor.received, sent_after=cursor.sent)
            if messages is None:  # evicted since the summaries were taken: the next poll reports it
                continue
            for message in messages:
                if message["direction"] == "received":
                    cursor.received = max(cursor.received, message["id"])
                else:
                    cursor.sent = max(cursor.sent, message["id"])
            cursor.counters = counters
            update = {name: summary[name] for name in _COUNTERS}
            events.append(_event("messages", {"span_id": span_id, "messages": messages, **update}))
        if summary["state"] == "closed" and not cursor.closed:
            cursor.closed = True
            events.append(_event("session_closed", summary))
    return events


def _seen(summary: dict[str, Any]) -> _Cursor:
    """A session in the snapshot: its messages so far are the page's to fetch, not the stream's.

    Message ids count per direction, so the newest id in each direction equals that counter.
    """
    return _Cursor(
        received=summary["messages_received"],
        sent=summary["messages_sent"],
        counters=tuple(summary[name] for name in _COUNTERS),
        closed=summary["state"] == "closed",
    )


def _event(name: str, data: dict[str, Any], *, retry: int | None = None) -> ServerSentEventMessage:
    # msgspec writes compact JSON with newlines escaped, so each event is one ``data:`` line.
    return ServerSentEventMessage(data=encode_json(data).decode(), event=name, retry=retry)
