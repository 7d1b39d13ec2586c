"""Live sessions: the handler runs inside the session's trace, and open sessions export as they go."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from litestar import Litestar, WebSocket, websocket
from opentelemetry import trace
from opentelemetry.trace import SpanKind, format_span_id
from websockets.asyncio.client import connect

from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from tests.integration.conftest import attribute, finished_spans
from tests.litestar_compat import OpenTelemetryConfig, OpenTelemetryPlugin, needs_exclude_spans
from tests.servers import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.servers import LiveServer

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


def current_span_id() -> str:
    return format_span_id(trace.get_current_span().get_span_context().span_id)


def traced_handler(handler_tracer: trace.Tracer) -> Any:
    @websocket("/traced")
    async def handler(socket: WebSocket[Any, Any, Any]) -> None:
        """Starts a span of its own per message, as a handler querying a database would; tells the current span."""
        before_accept = current_span_id()
        await socket.accept()
        while True:
            try:
                await socket.receive_text()
            except Exception:
                return
            with handler_tracer.start_as_current_span("handle message"):
                await socket.send_text(json.dumps({"before_accept": before_accept, "current": current_span_id()}))

    return handler


def session_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("WS ") and not s.name.endswith(" messages")]


@pytest.mark.parametrize(
    "with_litestar_plugin",
    [pytest.param(False, id="alone"), pytest.param(True, id="beside-litestar-plugin", marks=needs_exclude_spans)],
)
async def test_the_handlers_own_spans_join_the_session_trace(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
    live_server: Callable[..., LiveServer],
    with_litestar_plugin: bool,
) -> None:
    provider, exporter = provider_and_exporter
    plugins = (
        [OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider, exclude_spans=["receive", "send"]))]
        if with_litestar_plugin
        else []
    )
    app = Litestar(route_handlers=[traced_handler(provider.get_tracer("the-app"))], plugins=plugins)
    instrument_app(app, tracer_provider=provider)
    server = live_server(app)
    async with connect(server.url("/traced"), open_timeout=TIMEOUT) as client:
        await client.send("one")
        first = json.loads(await asyncio.wait_for(client.recv(), TIMEOUT))
        await client.send("two")
        await asyncio.wait_for(client.recv(), TIMEOUT)
    await asyncio.to_thread(wait_for, lambda: session_spans(exporter), timeout=TIMEOUT, what="the session span")
    (session,) = session_spans(exporter)
    handled = [s for s in exporter.get_finished_spans() if s.name == "handle message"]
    assert len(handled) == 2
    for span in handled:
        assert span.context.trace_id == session.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == session.context.span_id
    assert first["current"] == format_span_id(handled[0].context.span_id)
    assert first["before_accept"] != format_span_id(session.context.span_id)  # the span starts after routing
    if with_litestar_plugin:
        assert session.kind is SpanKind.INTERNAL
        (server_span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        assert session.parent is not None
        assert session.parent.span_id == server_span.context.span_id


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws", "path": path,
        "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2), "subprotocols": [],
    }  # fmt: skip


async def test_the_context_is_restored_on_every_path_in_the_same_task(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """After an error, a cancellation and a client drop, the next connection in the task starts clean."""
    provider, exporter = provider_and_exporter
    seen: list[trace.Span] = []

    @websocket("/ctx")
    async def record_context(socket: WebSocket[Any, Any, Any]) -> None:
        seen.append(trace.get_current_span())
        await socket.accept()
        text = await socket.receive_text()
        if text == "raise":
            raise RuntimeError("boom")
        await anyio.sleep_forever()

    app = Litestar(route_handlers=[record_context])
    instrument_app(app, tracer_provider=provider)

    async def serve(first: dict[str, Any], *, cancel: bool = False) -> None:
        inbox = [{"type": "websocket.connect"}, first]
        gate = asyncio.Event()

        async def receive() -> Any:
            if inbox:
                return inbox.pop(0)
            await gate.wait()
            return {"type": "websocket.disconnect", "code": 1000}

        async def send(_: Any) -> None:
            return None

        if cancel:
            with anyio.move_on_after(0.05):  # cancels the handler inside this task
                await app(scope_for("/ctx"), receive, send)  # type: ignore[arg-type]
        else:
            await app(scope_for("/ctx"), receive, send)  # type: ignore[arg-type]

    outside = trace.get_current_span()
    await serve({"type": "websocket.receive", "text": "raise"})
    assert trace.get_current_span() is outside
    await serve({"type": "websocket.receive", "text": "wait"}, cancel=True)
    assert trace.get_current_span() is outside
    await serve({"type": "websocket.disconnect", "code": 1006})
    assert trace.get_current_span() is outside
    assert seen == [outside, outside, outside]  # each handler started outside any session span
    assert len(session_spans(exporter)) == 3


@websocket("/stream")
async def stream_in_bursts(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    while True:
        try:
            count = int(await socket.receive_text())
        except Exception:
            return
        for index in range(count):
            await socket.send_text(f"item {index}")


def messages_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.endswith(" messages")]


def event_ids(span: ReadableSpan, name: str) -> list[int]:
    return [int(e.attributes["websocket.message.id"]) for e in span.events if e.name == name]  # type: ignore[index]


def assert_every_message_accounted_once(spans: list[ReadableSpan], received: int, sent: int) -> None:
    """Events exported + ``websocket.events.dropped`` = messages, per direction by id, none twice."""
    got_received = [i for s in spans for i in event_ids(s, "websocket.receive")]
    got_sent = [i for s in spans for i in event_ids(s, "websocket.send")]
    dropped = sum(int(attribute(s, "websocket.events.dropped")) for s in spans)
    assert len(got_received) == len(set(got_received))
    assert len(got_sent) == len(set(got_sent))
    assert set(got_received) <= set(range(1, received + 1))
    assert set(got_sent) <= set(range(1, sent + 1))
    assert len(got_received) + len(got_sent) + dropped == received + sent


async def test_an_open_session_exports_its_messages_before_it_closes(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
    live_server: Callable[..., LiveServer],
) -> None:
    provider, exporter = provider_and_exporter
    app = Litestar(route_handlers=[stream_in_bursts])
    config = WebSocketTelemetryConfig(export_interval_seconds=0.2, max_messages_per_session=20, capture_payloads=True)
    instrument_app(app, config, tracer_provider=provider)
    server = live_server(app)
    bursts = [3, 50, 5]  # 50 overflows the ring of 20: drops, counted
    async with connect(server.url("/stream"), open_timeout=TIMEOUT) as client:
        for burst in bursts:
            exported_before = len(messages_spans(exporter))
            await client.send(str(burst))
            for _ in range(burst):
                await asyncio.wait_for(client.recv(), TIMEOUT)
            await asyncio.to_thread(
                wait_for,
                lambda before=exported_before: len(messages_spans(exporter)) > before,
                timeout=TIMEOUT,
                what="a messages span while the session is open",
            )
        assert session_spans(exporter) == []  # still open: only the messages spans have left
    (session,) = finished_spans(exporter, len(bursts) + 1) and session_spans(exporter)
    children = messages_spans(exporter)
    assert len(children) >= len(bursts)
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == session.context.span_id
        assert child.name == "WS /stream messages"
    assert_every_message_accounted_once([*children, session], received=len(bursts), sent=sum(bursts))
    assert attribute(session, "websocket.messages.sent") == sum(bursts)


async def test_shutdown_exports_the_last_messages_of_open_sessions_and_ends_them_once(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
    live_server: Callable[..., LiveServer],
) -> None:
    provider, exporter = provider_and_exporter
    app = Litestar(route_handlers=[stream_in_bursts])
    instrument_app(app, WebSocketTelemetryConfig(export_interval_seconds=0.1), tracer_provider=provider)
    server = live_server(app)
    clients = [await connect(server.url("/stream"), open_timeout=TIMEOUT) for _ in range(3)]
    for ws in clients:
        await ws.send("4")
        for _ in range(4):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    await asyncio.to_thread(server.stop, TIMEOUT)
    for ws in clients:
        await ws.close()
    sessions = session_spans(exporter)
    assert len(sessions) == 3
    assert len({s.context.span_id for s in sessions}) == 3
    for session in sessions:
        mine = [s for s in exporter.get_finished_spans() if s.parent and s.parent.span_id == session.context.span_id]
        assert_every_message_accounted_once([*mine, session], received=1, sent=4)
        assert attribute(session, "websocket.close.code") == 1012
