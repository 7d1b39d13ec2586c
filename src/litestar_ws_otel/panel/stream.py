"""The panel's live channel: a WebSocket carrying deltas of the recent-sessions store.

The socket polls the store a few times a second and diffs it against what this socket already
sent. Nothing is added to the WebSocket hot path: a connection's task only appends to its ring,
whether zero or ten panels are open.

A WebSocket rather than server-sent events because servers end it on shutdown: uvicorn (like
other ASGI servers) delivers ``websocket.disconnect`` (1012) to the app, while a streaming HTTP
response would hold a graceful shutdown, and ``--reload``, until the browser tab closes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
from litestar.exceptions import WebSocketDisconnect
from litestar.serialization import encode_json

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from litestar import WebSocket

    from litestar_ws_otel.processor import RecentSessionsProcessor
    from litestar_ws_otel.statistics import SessionStatistics

__all__ = ("POLL_SECONDS", "Event", "diff", "serve_live", "session_events")

POLL_SECONDS = 0.25
"""How often a live socket looks at the store: deltas reach the browser within about this long."""

_COUNTERS = ("messages_received", "messages_sent", "bytes_received", "bytes_sent", "exported_at")
"""What a ``messages`` event updates: the counters, and when the session's messages last left early."""

Event: TypeAlias = tuple[str, dict[str, Any]]
"""An event's name and its JSON-ready data, whatever carries it."""


@dataclass(slots=True)
class _Cursor:
    """What one socket has told its browser about one session."""

    received: int
    """The last received-message id sent; ids count per direction from 1."""
    sent: int
    """The last sent-message id sent."""
    counters: tuple[int | float | None, ...]
    """Message and byte counters as last sent: a change means a ``messages`` event is due."""
    closed: bool
    """Whether ``session_closed`` was sent (or the session was closed in the snapshot)."""


async def serve_live(
    socket: WebSocket[Any, Any, Any],
    processor: RecentSessionsProcessor,
    statistics: SessionStatistics | None = None,
    *,
    health: Callable[[], dict[str, Any]] | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
) -> None:
    """Serve ``{panel_path}/api/live``: accept, then send events as ``{"event": name, "data": {...}}`` text frames.

    A second task waits on ``receive``: the browser leaving, or the server shutting down, delivers
    ``websocket.disconnect``, which cancels the sending side wherever it is (polling, or blocked
    in ``send``), and the handler returns. Whatever the page sends is ignored.

    Args:
        socket: The accepted-to-be connection; the panel's access check has already let it through.
        processor: The store to watch.
        statistics: The app's numbers, sent as ``stats`` events when they change.
        health: The export's state, sent as ``health`` events when it changes.
        poll_seconds: Time between looks at the store.
        sleep: The wait between polls; tests pass one they control.
    """
    await socket.accept()
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_disconnect, socket, group.cancel_scope)
        await _send_events(socket, processor, statistics, health, poll_seconds, sleep)
        group.cancel_scope.cancel()  # the client went during a send: stop waiting on receive


async def _cancel_on_disconnect(socket: WebSocket[Any, Any, Any], scope: anyio.CancelScope) -> None:
    while (await socket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()


async def _send_events(
    socket: WebSocket[Any, Any, Any],
    processor: RecentSessionsProcessor,
    statistics: SessionStatistics | None,
    health: Callable[[], dict[str, Any]] | None,
    poll_seconds: float,
    sleep: Callable[[float], Awaitable[Any]],
) -> None:
    """Send until the task is cancelled; return when a send finds the client gone."""
    events_of_store = session_events(processor, statistics, health=health, poll_seconds=poll_seconds, sleep=sleep)
    async with contextlib.aclosing(events_of_store) as events:
        async for name, data in events:
            try:
                await socket.send_data(encode_json({"event": name, "data": data}).decode())
            except (WebSocketDisconnect, OSError):  # uvicorn's ClientDisconnected is an OSError
                return


async def session_events(
    processor: RecentSessionsProcessor,
    statistics: SessionStatistics | None = None,
    *,
    health: Callable[[], dict[str, Any]] | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
) -> AsyncGenerator[Event, None]:
    """A ``snapshot`` event, then deltas: ``session_opened``, ``messages``, ``session_closed``, ``session_evicted``;
    ``stats`` whenever the app's numbers changed, ``health`` whenever the export's state did.

    Memory stays bounded for a slow browser because nothing is queued: the socket pulls the next
    event only after the previous one was sent (uvicorn's ``send`` waits until the transport is
    writable again), and only then does this generator look at the store again. Whatever happened
    meanwhile becomes one delta per session, at most the messages the ring still holds, so a
    browser that stops reading costs one tick's events, not a backlog.

    Args:
        processor: The store to watch.
        statistics: The app's numbers; ``None`` sends no ``stats`` events.
        health: The export's state; ``None`` sends no ``health`` events.
        poll_seconds: Time between looks at the store.
        sleep: The wait between polls.
    """
    summaries = processor.summaries()
    cursors = {summary["span_id"]: _seen(summary) for summary in summaries}
    yield "snapshot", {"sessions": summaries}
    sent: dict[str, Any] = {}
    sources: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    if statistics is not None:
        sources.append(("stats", lambda: statistics.snapshot().as_json()))
    if health is not None:
        sources.append(("health", lambda: {"export": health()}))
    while True:
        for name, read in sources:
            latest = read()
            if latest != sent.get(name):
                sent[name] = latest
                yield name, latest
        await sleep(poll_seconds)
        for event in diff(processor, cursors):
            yield event


def diff(processor: RecentSessionsProcessor, cursors: dict[str, _Cursor]) -> list[Event]:
    """The events that bring a browser from ``cursors`` to the store's present; updates ``cursors``.

    Sessions are visited oldest first, so ``session_opened`` events arrive in start order.
    """
    events: list[Event] = []
    summaries = processor.summaries()
    present = {summary["span_id"] for summary in summaries}
    for span_id in [span_id for span_id in cursors if span_id not in present]:
        del cursors[span_id]
        events.append(("session_evicted", {"span_id": span_id}))
    for summary in reversed(summaries):
        span_id = summary["span_id"]
        cursor = cursors.get(span_id)
        if cursor is None:
            cursor = cursors[span_id] = _Cursor(received=0, sent=0, counters=(0, 0, 0, 0, None), closed=False)
            events.append(("session_opened", summary))
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
            events.append(("messages", {"span_id": span_id, "messages": messages, **update}))
        if summary["state"] == "closed" and not cursor.closed:
            cursor.closed = True
            events.append(("session_closed", summary))
    return events


def _seen(summary: dict[str, Any]) -> _Cursor:
    """A session in the snapshot: its messages so far are the page's to fetch, not the socket's.

    Message ids count per direction, so the newest id in each direction equals that counter.
    """
    return _Cursor(
        received=summary["messages_received"],
        sent=summary["messages_sent"],
        counters=tuple(summary[name] for name in _COUNTERS),
        closed=summary["state"] == "closed",
    )
