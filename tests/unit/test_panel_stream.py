"""The live stream: deltas from the store, heartbeats, closing, and no backlog behind a blocked send.

The generator is driven directly, or through a Litestar app's ASGI callable with an in-memory
``send`` that the test holds, and a ``sleep`` that only yields to the loop: nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.response import ServerSentEvent
from litestar.types import Message
from opentelemetry.sdk.trace import TracerProvider

from litestar_ws_otel.panel.stream import StreamCounter, diff, event_stream, session_events
from litestar_ws_otel.processor import RecentSessionsProcessor, context_with_session
from litestar_ws_otel.session import PreviewPolicy, Session

POLICY = PreviewPolicy(
    capture_payloads=True, max_payload_bytes=64, capture_binary_preview=False, binary_preview_bytes=4
)
RING = 5
SPINS = 200
"""Loop iterations that let every ready task run many times over; no wall-clock wait."""


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


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


def decoded(events: list[Any]) -> list[tuple[str, Any]]:
    return [(event.event, json.loads(event.data)) for event in events]


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
    counter = StreamCounter()
    events = session_events(processor, counter, sleep=no_wait)
    snapshot = await anext(events)
    assert snapshot.event == "snapshot"
    assert snapshot.retry == 2000
    assert json.loads(str(snapshot.data)) == {"sessions": processor.summaries()}
    session.on_message("sent", "new")
    delta = await anext(events)
    assert delta.event == "messages"
    assert [m["payload"] for m in json.loads(str(delta.data))["messages"]] == ["new"]
    assert (counter.live, counter.opened, counter.events) == (1, 1, 2)
    await events.aclose()
    assert counter.live == 0


async def test_heartbeat_comment_after_silence(processor: RecentSessionsProcessor) -> None:
    counter = StreamCounter()
    events = session_events(processor, counter, heartbeat_seconds=0, sleep=no_wait)
    assert (await anext(events)).event == "snapshot"
    heartbeat = await anext(events)
    assert (heartbeat.event, heartbeat.data, heartbeat.comment) == (None, None, "keep-alive")
    assert heartbeat.encode() == b": keep-alive\r\n\r\n"
    assert counter.events == 1  # comments are not events
    await events.aclose()


class HeldStream:
    """A Litestar app serving ``event_stream`` through an in-memory ``send`` that the test holds."""

    def __init__(self, processor: RecentSessionsProcessor) -> None:
        self.counter = StreamCounter()
        self.polls = 0
        self.bodies: list[bytes] = []
        self.gate = asyncio.Event()  # cleared: the socket buffer is full and ``send`` does not return
        self.disconnect = asyncio.Event()

        @get("/stream", sync_to_thread=False)
        def stream() -> ServerSentEvent:
            return event_stream(processor, self.counter, sleep=self.counted_sleep)

        self.app = Litestar(route_handlers=[stream])

    async def counted_sleep(self, _: float) -> None:
        self.polls += 1
        await asyncio.sleep(0)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            self.bodies.append(message["body"])
            await self.gate.wait()

    async def receive(self) -> Message:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    def start(self) -> asyncio.Task[None]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/stream", "raw_path": b"/stream", "root_path": "", "query_string": b"", "headers": [],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        return asyncio.create_task(self.app(scope, self.receive, self.send))  # type: ignore[arg-type]


async def test_blocked_send_stops_the_generator(provider: TracerProvider, processor: RecentSessionsProcessor) -> None:
    """A browser that stops reading costs one pending event: no polling, no queue, until send returns."""
    session, _, span_id = start(provider, processor)
    held = HeldStream(processor)
    task = held.start()
    await spin_until(lambda: held.bodies)
    assert b"event: snapshot" in held.bodies[0]

    for index in range(10_000):
        session.on_message("received", str(index))
    for _ in range(SPINS):
        await asyncio.sleep(0)
    assert (len(held.bodies), held.counter.events, held.polls) == (1, 1, 0)  # parked at the snapshot's yield

    held.gate.set()
    await spin_until(lambda: len(held.bodies) >= 2)
    assert b"event: messages" in held.bodies[1]
    data = json.loads(held.bodies[1].decode().split("data: ", 1)[1])
    assert data["span_id"] == span_id
    assert data["messages_received"] == 10_000
    assert len(data["messages"]) == RING

    held.disconnect.set()  # while polling: the cancellation ends the generator
    await asyncio.wait_for(task, timeout=10)
    assert held.counter.live == 0


async def test_disconnect_while_a_send_is_blocked_closes_the_generator(processor: RecentSessionsProcessor) -> None:
    held = HeldStream(processor)
    task = held.start()
    await spin_until(lambda: held.bodies)
    assert held.counter.live == 1
    held.disconnect.set()  # parked at a yield: only the response's background task can close it
    await asyncio.wait_for(task, timeout=10)
    assert held.counter.live == 0


async def spin_until(predicate: Any, spins: int = 10_000) -> None:
    for _ in range(spins):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
