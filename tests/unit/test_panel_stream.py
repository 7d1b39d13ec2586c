"""The live socket: deltas from the store, disconnects, and no backlog behind a blocked send.

The generator is driven directly, or through a Litestar app's ASGI callable with an in-memory
``receive`` and ``send`` that the test holds, and a ``sleep`` that only yields to the loop:
nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar import Litestar, WebSocket, websocket
from litestar.serialization import encode_json
from litestar.types import Message
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel.panel.stream import Event, diff, serve_live, session_events
from litestar_ws_otel.processor import RecentSessionsProcessor
from litestar_ws_otel.session import PreviewPolicy, Session
from litestar_ws_otel.session_context import context_with_session
from tests.live_sockets import LiveSockets

POLICY = PreviewPolicy(
    capture_payloads=True, max_payload_bytes=64, capture_binary_preview=False, binary_preview_bytes=4
)
RING = 5
SPINS = 200
"""Loop iterations that let every ready task run many times over; no wall-clock wait."""


@pytest.fixture
def processor(provider: TracerProvider) -> RecentSessionsProcessor:
    processor = RecentSessionsProcessor(max_sessions=3)
    provider.add_span_processor(processor)
    return processor


def start(provider: TracerProvider, processor: RecentSessionsProcessor) -> tuple[Session, Any, str]:
    session = Session(policy=POLICY, max_messages=RING, path="/x", route="/x", owner=processor)
    span = provider.get_tracer("t").start_span("WS /x", context=context_with_session(session, None))
    session.on_accept(None)
    return session, span, format(span.get_span_context().span_id, "016x")


def finish(session: Session, span: Any, code: int = 1000) -> None:
    session.on_close(code, "bye", "server")
    session.finish()
    span.end()


def decoded(events: list[Event]) -> list[tuple[str, Any]]:
    """The events as the page gets them: the data must be JSON as it is."""
    return [(name, json.loads(encode_json(data))) for name, data in events]


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


# --- diff -----------------------------------------------------------------------------------------


def test_new_session_then_only_new_messages_then_close(
    provider: TracerProvider, processor: RecentSessionsProcessor
) -> None:
    cursors: dict[str, Any] = {}
    session, span, span_id = start(provider, processor)
    session.on_message("received", "r1")
    [(opened, summary), (kind, delta)] = decoded(diff(processor, cursors))
    assert (opened, kind) == ("session_opened", "messages")
    assert summary == processor.summaries()[0]
    assert [(m["direction"], m["id"], m["payload"]) for m in delta["messages"]] == [("received", 1, "r1")]
    assert delta["messages_received"] == 1
    assert delta["bytes_received"] == 2

    assert diff(processor, cursors) == []  # nothing changed, nothing sent

    session.on_message("sent", "s1")
    session.on_message("received", "r2")
    [(kind, delta)] = decoded(diff(processor, cursors))
    assert kind == "messages"
    assert delta["span_id"] == span_id
    assert [(m["direction"], m["id"]) for m in delta["messages"]] == [("sent", 1), ("received", 2)]
    assert (delta["messages_received"], delta["messages_sent"]) == (2, 1)

    session.on_message("sent", "s2")
    finish(session, span, code=4001)
    [(kind, delta), (closed, summary)] = decoded(diff(processor, cursors))
    assert kind == "messages"
    assert [m["id"] for m in delta["messages"]] == [2]
    assert closed == "session_closed"
    assert (summary["state"], summary["close_code"], summary["close_reason"]) == ("closed", 4001, "bye")
    assert "messages" not in summary
    assert diff(processor, cursors) == []


def test_a_burst_is_one_delta_bounded_by_the_ring(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    cursors: dict[str, Any] = {}
    session, _, _ = start(provider, processor)
    diff(processor, cursors)
    for index in range(10_000):
        session.on_message("received", str(index))
    [(kind, delta)] = decoded(diff(processor, cursors))
    assert kind == "messages"
    assert [m["id"] for m in delta["messages"]] == [9996, 9997, 9998, 9999, 10000]
    assert delta["messages_received"] == 10_000


def test_sessions_open_in_start_order_and_evictions_are_reported(
    provider: TracerProvider, processor: RecentSessionsProcessor
) -> None:
    cursors: dict[str, Any] = {}
    ids = []
    for _ in range(3):
        session, span, span_id = start(provider, processor)
        finish(session, span)
        ids.append(span_id)
    events = decoded(diff(processor, cursors))
    assert [d["span_id"] for name, d in events if name == "session_opened"] == ids
    session, span, newest = start(provider, processor)  # max_sessions=3: the oldest goes
    events = decoded(diff(processor, cursors))
    assert events[0] == ("session_evicted", {"span_id": ids[0]})
    assert events[1][0] == "session_opened"
    assert events[1][1]["span_id"] == newest


# --- the generator --------------------------------------------------------------------------------


async def test_snapshot_first_then_only_what_came_after(
    provider: TracerProvider, processor: RecentSessionsProcessor
) -> None:
    session, _, _ = start(provider, processor)
    session.on_message("received", "old")
    events = session_events(processor, sleep=no_wait)
    assert await anext(events) == ("snapshot", {"sessions": processor.summaries()})
    session.on_message("sent", "new")
    name, delta = await anext(events)
    assert name == "messages"
    assert [m["payload"] for m in delta["messages"]] == ["new"]
    await events.aclose()


# --- the socket -----------------------------------------------------------------------------------


class HeldSocket:
    """A Litestar app serving ``serve_live`` through an in-memory ``receive`` and ``send`` that the test holds."""

    def __init__(self, processor: RecentSessionsProcessor) -> None:
        self.counter = LiveSockets()
        self.polls = 0
        self.sent: list[Message] = []
        self.gate = asyncio.Event()  # cleared: the socket buffer is full and ``send`` does not return
        self.gone = False  # ``send`` raises as uvicorn's does once the client is gone
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})

        @websocket("/live")
        async def live(socket: WebSocket[Any, Any, Any]) -> None:
            async with self.counter.serving():
                await serve_live(socket, processor, sleep=self.counted_sleep)

        self.app = Litestar(route_handlers=[live])

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(message["text"]) for message in self.sent if message["type"] == "websocket.send"]

    async def counted_sleep(self, _: float) -> None:
        self.polls += 1
        await asyncio.sleep(0)

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            self.counter.events += 1
        if self.gone and message["type"] == "websocket.send":
            raise OSError("the client is gone")  # uvicorn's ClientDisconnected is an OSError
        self.sent.append(message)
        if message["type"] == "websocket.send":
            await self.gate.wait()

    async def receive(self) -> Message:
        return await self.inbox.get()

    def start(self) -> asyncio.Task[None]:
        scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
            "path": "/live", "raw_path": b"/live", "root_path": "", "query_string": b"", "headers": [],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "subprotocols": [], "state": {},
        }  # fmt: skip
        return asyncio.create_task(self.app(scope, self.receive, self.send))  # type: ignore[arg-type]

    async def stopped(self, task: asyncio.Task[None]) -> None:
        """The handler returned by itself, without failing: nothing but the accept and events was sent."""
        await asyncio.wait_for(task, timeout=10)
        assert {message["type"] for message in self.sent} <= {"websocket.accept", "websocket.send"}
        assert self.counter.live == 0


async def test_blocked_send_stops_polling(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    """A browser that stops reading costs one pending event: no polling, no queue, until send returns."""
    session, _, span_id = start(provider, processor)
    held = HeldSocket(processor)
    task = held.start()
    await spin_until(lambda: held.frames)
    assert held.sent[0]["type"] == "websocket.accept"
    assert held.frames == [{"event": "snapshot", "data": {"sessions": processor.summaries()}}]

    for index in range(10_000):
        session.on_message("received", str(index))
    for _ in range(SPINS):
        await asyncio.sleep(0)
    assert (len(held.frames), held.counter.events, held.polls) == (1, 1, 0)  # parked in the snapshot's send

    held.gate.set()
    await spin_until(lambda: len(held.frames) >= 2)
    delta = held.frames[1]
    assert delta["event"] == "messages"
    assert delta["data"]["span_id"] == span_id
    assert delta["data"]["messages_received"] == 10_000
    assert len(delta["data"]["messages"]) == RING
    assert (held.counter.live, held.counter.opened, held.counter.events) == (1, 1, 2)

    held.inbox.put_nowait({"type": "websocket.disconnect", "code": 1001})  # while polling
    await held.stopped(task)
    assert (held.counter.opened, held.counter.events) == (1, 2)


@pytest.mark.parametrize("code", [1001, 1012])  # the tab closed; the server shuts down
async def test_disconnect_while_a_send_is_blocked_ends_the_handler(
    processor: RecentSessionsProcessor, code: int
) -> None:
    held = HeldSocket(processor)
    task = held.start()
    await spin_until(lambda: held.frames)
    assert held.counter.live == 1
    held.inbox.put_nowait({"type": "websocket.disconnect", "code": code})
    await held.stopped(task)
    assert held.polls == 0


async def test_messages_from_the_page_are_ignored(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    held = HeldSocket(processor)
    held.gate.set()
    task = held.start()
    await spin_until(lambda: held.frames)
    held.inbox.put_nowait({"type": "websocket.receive", "text": "hello?"})
    start(provider, processor)
    await spin_until(lambda: any(frame["event"] == "session_opened" for frame in held.frames))
    assert held.counter.live == 1
    held.inbox.put_nowait({"type": "websocket.disconnect", "code": 1001})
    await held.stopped(task)


async def test_a_send_that_finds_the_client_gone_ends_the_handler(processor: RecentSessionsProcessor) -> None:
    held = HeldSocket(processor)
    held.gone = True  # the accept goes through; the snapshot's send fails
    task = held.start()
    await held.stopped(task)  # without waiting for a disconnect that uvicorn delivers only later
    assert [message["type"] for message in held.sent] == ["websocket.accept"]
    assert (held.counter.opened, held.counter.events) == (1, 1)


async def spin_until(predicate: Any, spins: int = 10_000) -> None:
    for _ in range(spins):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
