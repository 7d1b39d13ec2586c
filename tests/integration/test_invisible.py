"""An instrumented app cannot tell it is instrumented: its state, its provider, its closes, its messages."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from litestar import Litestar, WebSocket, get, websocket
from litestar.datastructures import ImmutableState, State
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from opentelemetry.trace import StatusCode
from websockets.asyncio.client import connect

from litestar_ws_otel import instrument_app
from litestar_ws_otel.dispatch import SessionDispatcher
from litestar_ws_otel.handle import handle_of
from tests.apps import echo_messages
from tests.integration.conftest import attribute, event_names, events_named, finished_spans
from tests.litestar_compat import forget_routing_cache

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.servers import LiveServer

pytestmark = pytest.mark.integration


@websocket("/state")
async def read_state(socket: WebSocket[Any, Any, Any], state: ImmutableState) -> None:
    await socket.accept()
    await socket.send_json(dict(state.dict()))
    await socket.close()


@get("/state", sync_to_thread=False)
def state_as_json(state: State) -> dict[str, Any]:
    return state.dict()


async def test_app_state_is_untouched_and_immutable_state_handlers_work(
    make_instrumented_app: Callable[..., Any], live_server: Callable[[Any], LiveServer]
) -> None:
    app, handle = make_instrumented_app([read_state, state_as_json], state=State({"greeting": "hi"}))
    assert dict(app.state.dict()) == {"greeting": "hi"}
    assert handle_of(app) is handle
    server = live_server(app)
    async with connect(server.url("/state"), open_timeout=10) as client:
        assert await asyncio.wait_for(client.recv(), 10) == '{"greeting":"hi"}'
    with TestClient(app) as http:
        assert http.get("/state").json() == {"greeting": "hi"}


def serve_one_app(provider: TracerProvider, index: int) -> weakref.ref[Any]:
    """Instrument a new app on ``provider``, talk to it once, check its own sessions; a weak ref to its store."""
    # A handler of its own: Litestar's handler objects keep a reference to the last app they joined.
    app = Litestar(route_handlers=[websocket("/echo")(echo_messages)], debug=True)
    handle = instrument_app(app, tracer_provider=provider)
    assert instrument_app(app, tracer_provider=provider) is handle
    with TestClient(app) as client, client.websocket_connect("/echo") as ws:
        ws.send_text(f"app {index}")
        assert ws.receive_text() == f"app {index}"
    sessions = handle.processor.sessions()
    assert [m["payload"] for s in sessions for m in s["messages"]] == [f"app {index}", f"app {index}"]
    return weakref.ref(handle.processor)


def test_thirty_apps_on_one_provider_add_one_processor_and_keep_their_own_sessions(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = provider_and_exporter
    before = len(provider._active_span_processor._span_processors)
    stores = [serve_one_app(provider, index) for index in range(30)]
    processors = provider._active_span_processor._span_processors
    assert len(processors) == before + 1
    assert isinstance(processors[-1], SessionDispatcher)
    forget_routing_cache()  # Litestar before 2.25 keeps every app that routed a connection
    gc.collect()
    assert [store for store in stores if store() is not None] == []  # gone with their apps


@websocket("/group")
async def read_in_a_task_group(socket: WebSocket[Any, Any, Any]) -> None:
    """Receive in a child task, as handlers that also push from another task do."""
    await socket.accept()

    async def receive_forever() -> None:
        while True:
            await socket.send_text(await socket.receive_text())

    async with anyio.create_task_group() as group:
        group.start_soon(receive_forever)


@websocket("/group-error")
async def fail_in_a_task_group(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()

    async def fail() -> None:
        await socket.receive_text()
        raise LookupError("no such room")

    async with anyio.create_task_group() as group:
        group.start_soon(fail)


async def test_a_client_close_through_a_task_group_is_not_an_error(
    make_instrumented_app: Callable[..., Any],
    live_server: Callable[[Any], LiveServer],
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([read_in_a_task_group])
    server = live_server(app)
    async with connect(server.url("/group"), open_timeout=10) as client:
        await client.send("hi")
        assert await asyncio.wait_for(client.recv(), 10) == "hi"
    (span,) = finished_spans(exporter, 1)
    assert span.status.status_code is StatusCode.UNSET
    assert attribute(span, "error.type") is None
    assert attribute(span, "websocket.close.code") == 1000
    assert "exception" not in event_names(span)


async def test_an_error_inside_a_task_group_records_the_inner_type(
    make_instrumented_app: Callable[..., Any],
    live_server: Callable[[Any], LiveServer],
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([fail_in_a_task_group])
    server = live_server(app)
    async with connect(server.url("/group-error"), open_timeout=10) as client:
        await client.send("go")
        with pytest.raises(Exception, match="4500"):
            await asyncio.wait_for(client.recv(), 10)
    (span,) = finished_spans(exporter, 1)
    assert span.status.status_code is StatusCode.ERROR
    assert attribute(span, "error.type") == "LookupError"
    (exception,) = events_named(span, "exception")
    assert exception.attributes is not None
    assert "ExceptionGroup" in str(exception.attributes["exception.type"])
    assert "no such room" in str(exception.attributes["exception.stacktrace"])


@websocket("/dict-text")
async def send_a_dict_as_text(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text("before")
    try:
        await socket.receive_text()
    except WebSocketDisconnect:
        return


async def test_a_dict_sent_as_text_is_not_counted_and_logs_nothing_per_message(
    make_instrumented_app: Callable[..., Any],
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ASGI forbids a non-string ``text``; the app still gets exactly what the plain app gets."""
    _, exporter = provider_and_exporter
    received: list[Any] = []

    @websocket("/raw")
    async def raw(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        for _ in range(3):
            await socket.send({"type": "websocket.send", "text": {"not": "a string"}})  # type: ignore[typeddict-item]
        received.append(await socket.receive())

    app, _ = make_instrumented_app([raw], logging_config=None)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    inbox = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": {"also": "wrong"}}]

    async def receive() -> Any:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws", "path": "/raw",
        "raw_path": b"/raw", "root_path": "", "query_string": b"", "headers": [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2), "subprotocols": [], "state": {},
    }  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="litestar_ws_otel"):
        await app(scope, receive, send)
    assert [m.get("text") for m in sent if m["type"] == "websocket.send"] == [{"not": "a string"}] * 3
    assert received == [{"type": "websocket.receive", "text": {"also": "wrong"}}]
    (span,) = finished_spans(exporter, 1)
    assert attribute(span, "websocket.messages.sent") == 0
    assert attribute(span, "websocket.messages.received") == 0
    assert attribute(span, "websocket.bytes.sent") == 0
    assert attribute(span, "websocket.events.dropped") == 0
    records = [r for r in caplog.records if r.name == "litestar_ws_otel"]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert "neither str nor bytes" in records[0].getMessage()
