"""Connection lifecycle over a real uvicorn server and a real ``websockets`` client, against the span schema."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, WebSocketDisconnect
from opentelemetry.trace import SpanKind, StatusCode
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from litestar_ws_otel import instrument_app
from tests.apps import room_echo as echo
from tests.servers import wait_for

from .conftest import attribute, event_names, events_named, finished_spans, spans_named

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from websockets.asyncio.client import ClientConnection

    from litestar_ws_otel import Instrumentation
    from tests.servers import LiveServer

    MakeApp = Callable[..., tuple[Litestar, Instrumentation]]
    StartServer = Callable[..., LiveServer]

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
"""Upper bound for every wait on the client side; conditions end waits, never this bound."""

ECHO = "WS /echo/{room}"
WAIT = "WS /wait/{name}"


# --- handlers ---------------------------------------------------------------------------------------------------


@websocket("/wait/{name:str}")
async def wait_in_receive(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept, then wait in ``receive`` until the connection ends."""
    await socket.accept()
    try:
        while True:
            await socket.receive_text()
    except WebSocketDisconnect:
        return


@websocket("/server-close/{code:int}")
async def server_close(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept, then close with the code from the path and the reason "bye"."""
    await socket.accept()
    await socket.close(code=socket.path_params["code"], reason="bye")


@websocket("/boom")
async def boom(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept, then fail."""
    await socket.accept()
    raise RuntimeError("boom")


@websocket("/flood")
async def flood(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept, then send until sending fails."""
    await socket.accept()
    while True:
        await socket.send_text("x" * 1024)
        # uvicorn's send returns without yielding while its buffer is writable: without this the loop would
        # starve the server's event loop, which could then never see the client go (true without instrumentation).
        await asyncio.sleep(0)


@websocket("/unguarded-receive")
async def unguarded_receive(socket: WebSocket[Any, Any, Any]) -> None:
    """The common shape: ``WebSocketDisconnect`` from ``receive_text`` escapes the handler."""
    await socket.accept()
    while True:
        await socket.send_text(await socket.receive_text())


@websocket("/close-before-accept")
async def close_before_accept(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.close()


def _deny_unauthorized(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    raise NotAuthorizedException()


def _deny_forbidden(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    raise PermissionDeniedException()


@websocket("/guarded/unauthorized", guards=[_deny_unauthorized])
async def guarded_unauthorized(socket: WebSocket[Any, Any, Any]) -> None:  # pragma: no cover - the guard denies
    await socket.accept()


@websocket("/guarded/forbidden", guards=[_deny_forbidden])
async def guarded_forbidden(socket: WebSocket[Any, Any, Any]) -> None:  # pragma: no cover - the guard denies
    await socket.accept()


@websocket("/ignore-disconnect")
async def ignore_disconnect(socket: WebSocket[Any, Any, Any]) -> None:
    """Accept, then never look at the connection again: only cancellation ends it."""
    await socket.accept()
    await asyncio.Event().wait()


ALL_HANDLERS = [
    echo,
    wait_in_receive,
    server_close,
    boom,
    flood,
    unguarded_receive,
    close_before_accept,
    guarded_unauthorized,
    guarded_forbidden,
    ignore_disconnect,
]


# --- helpers ----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_span_ended_twice(caplog: pytest.LogCaptureFixture) -> Generator[None, None, None]:
    """Every test: the SDK never warns of a span ended twice, or used after its end (in any thread)."""
    caplog.set_level(logging.WARNING, logger="opentelemetry")
    yield
    late = [record.getMessage() for record in caplog.records if "ended span" in record.getMessage()]
    assert not late, f"a span was ended twice or used after its end: {late}"


@pytest.fixture
def exporter(provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    return provider_and_exporter[1]


@pytest.fixture
def served(make_instrumented_app: MakeApp, live_server: StartServer) -> tuple[LiveServer, Instrumentation]:
    """The instrumented app with all handlers, served by uvicorn."""
    app, handle = make_instrumented_app(ALL_HANDLERS)
    return live_server(app), handle


async def spans_after(exporter: InMemorySpanExporter, count: int) -> tuple[ReadableSpan, ...]:
    """``finished_spans`` without blocking the client's event loop."""
    return await asyncio.to_thread(finished_spans, exporter, count, TIMEOUT)


async def stop(server: LiveServer) -> None:
    """Stop uvicorn and wait for its thread, without blocking the client's event loop."""
    server.server.should_exit = True
    await asyncio.to_thread(server.thread.join, TIMEOUT)
    assert not server.thread.is_alive(), "uvicorn did not stop"


async def only_span(exporter: InMemorySpanExporter, server: LiveServer, name: str) -> ReadableSpan:
    """Wait for the span, stop the server (so every connection has ended), then require exactly one span."""
    await spans_after(exporter, 1)
    await stop(server)
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == [name], "one connection must produce exactly one span"
    return spans[0]


async def await_close(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes; the close code and reason the client received."""

    async def drain() -> None:
        with contextlib.suppress(ConnectionClosed):  # ConnectionClosedError for codes other than 1000/1001
            async for _ in ws:
                pass

    await asyncio.wait_for(drain(), TIMEOUT)
    return ws.close_code, ws.close_reason


async def handshake_status(url: str) -> int:
    """The HTTP status of a rejected handshake."""
    with pytest.raises(InvalidStatus) as rejected:
        async with connect(url, open_timeout=TIMEOUT):
            pass  # pragma: no cover - the handshake is rejected
    return rejected.value.response.status_code


def assert_close(span: ReadableSpan, code: int, reason: str, initiator: str) -> None:
    assert attribute(span, "websocket.close.code") == code
    assert attribute(span, "websocket.close.reason") == reason
    assert attribute(span, "websocket.close.initiator") == initiator
    [close] = events_named(span, "websocket.close")
    assert dict(close.attributes or {}) == {
        "websocket.close.code": code,
        "websocket.close.reason": reason,
        "websocket.close.initiator": initiator,
    }


def assert_events_in_time_order(span: ReadableSpan) -> None:
    times = [event.timestamp for event in span.events]
    assert times == sorted(times)
    assert span.start_time is not None
    assert span.end_time is not None
    assert all(span.start_time <= time <= span.end_time for time in times)


# --- client closes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1001, "going away"), (4001, "client says bye")],
    ids=["1000", "1001", "4001"],
)
async def test_client_close_leaves_status_unset(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter, code: int, reason: str
) -> None:
    server, _ = served
    async with connect(server.url("/echo/lobby?x=1"), open_timeout=TIMEOUT) as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
        await ws.send(b"\x00\x01\x02")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00\x01\x02"
        await ws.send("héllo")  # 6 UTF-8 bytes
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "héllo"
        await asyncio.wait_for(ws.close(code=code, reason=reason), TIMEOUT)

    span = await only_span(exporter, server, ECHO)
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/echo/{room}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.scheme"] == "ws"
    assert attributes["url.path"] == "/echo/lobby"
    assert attributes["url.query"] == "x=1"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert attributes["client.address"] == "127.0.0.1"
    assert isinstance(attributes["client.port"], int)
    assert attributes["user_agent.original"].startswith("Python/")
    assert attributes["network.protocol.name"] == "websocket"
    assert attributes["network.protocol.version"] == "13"
    assert attributes["http.response.status_code"] == 101
    assert attributes["websocket.messages.received"] == 3
    assert attributes["websocket.messages.sent"] == 3
    assert attributes["websocket.bytes.received"] == 5 + 3 + 6
    assert attributes["websocket.bytes.sent"] == 5 + 3 + 6
    assert attributes["websocket.events.dropped"] == 0
    assert "error.type" not in attributes
    assert_close(span, code, reason, "client")

    assert event_names(span) == [
        "websocket.accept",
        "websocket.receive",
        "websocket.send",
        "websocket.receive",
        "websocket.send",
        "websocket.receive",
        "websocket.send",
        "websocket.close",
    ]
    assert_events_in_time_order(span)
    messages = [dict(event.attributes or {}) for event in span.events[1:-1]]
    assert [
        (m["websocket.message.type"], m["websocket.message.id"], m["websocket.message.size"]) for m in messages
    ] == [
        ("text", 1, 5),
        ("text", 1, 5),
        ("binary", 2, 3),
        ("binary", 2, 3),
        ("text", 3, 6),
        ("text", 3, 6),
    ]


# --- server closes ----------------------------------------------------------------------------------------------


async def test_server_close_with_code_and_reason_is_initiated_by_server(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/server-close/4001"), open_timeout=TIMEOUT) as ws:
        assert await await_close(ws) == (4001, "bye")

    span = await only_span(exporter, server, "WS /server-close/{code}")
    assert span.status.status_code is StatusCode.UNSET
    assert attribute(span, "http.response.status_code") == 101
    assert_close(span, 4001, "bye", "server")
    assert event_names(span) == ["websocket.accept", "websocket.close"]
    assert_events_in_time_order(span)


async def test_server_close_1011_sets_error(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/server-close/1011"), open_timeout=TIMEOUT) as ws:
        assert await await_close(ws) == (1011, "bye")

    span = await only_span(exporter, server, "WS /server-close/{code}")
    assert span.status.status_code is StatusCode.ERROR
    assert attribute(span, "error.type") == "1011"
    assert_close(span, 1011, "bye", "server")


async def test_server_close_1000_leaves_status_unset(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/server-close/1000"), open_timeout=TIMEOUT) as ws:
        assert await await_close(ws) == (1000, "bye")

    span = await only_span(exporter, server, "WS /server-close/{code}")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})
    assert_close(span, 1000, "bye", "server")


# --- handler exceptions -----------------------------------------------------------------------------------------


async def test_handler_exception_sets_error_and_client_sees_4500_as_without_instrumentation(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter, live_server: StartServer
) -> None:
    server, _ = served
    bare = live_server(Litestar(route_handlers=[boom], debug=True))
    async with connect(bare.url("/boom"), open_timeout=TIMEOUT) as ws:
        uninstrumented = await await_close(ws)
    async with connect(server.url("/boom"), open_timeout=TIMEOUT) as ws:
        instrumented = await await_close(ws)
    assert uninstrumented == (4500, "Internal Server Error")
    assert instrumented == uninstrumented

    span = await only_span(exporter, server, "WS /boom")
    assert span.status.status_code is StatusCode.ERROR
    assert attribute(span, "error.type") == "RuntimeError"
    assert attribute(span, "http.response.status_code") == 101
    assert_close(span, 4500, "Internal Server Error", "server")
    assert event_names(span) == ["websocket.accept", "exception", "websocket.close"]
    [exception] = events_named(span, "exception")
    assert (exception.attributes or {})["exception.type"] == "RuntimeError"
    assert (exception.attributes or {})["exception.message"] == "boom"
    assert_events_in_time_order(span)


async def test_escaping_websocket_disconnect_is_not_an_error(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/unguarded-receive"), open_timeout=TIMEOUT) as ws:
        await ws.send("x")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "x"
        await asyncio.wait_for(ws.close(code=1000), TIMEOUT)

    span = await only_span(exporter, server, "WS /unguarded-receive")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})
    assert "exception" not in event_names(span)
    assert_close(span, 1000, "", "client")


# --- client drops -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ws_impl",
    [
        "websockets-sansio",
        pytest.param(
            "websockets",  # uvicorn's legacy implementation, for comparison
            marks=[
                pytest.mark.filterwarnings("ignore::DeprecationWarning"),
                pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
            ],
        ),
    ],
)
async def test_client_drop_while_handler_receives_is_1006_from_client(
    make_instrumented_app: MakeApp, live_server: StartServer, exporter: InMemorySpanExporter, ws_impl: str
) -> None:
    app, _ = make_instrumented_app([wait_in_receive])
    server = live_server(app, ws=ws_impl)
    async with connect(server.url("/wait/drop"), open_timeout=TIMEOUT) as ws:
        ws.transport.abort()  # no close frame: the TCP connection just goes away

    span = await only_span(exporter, server, WAIT)
    assert attribute(span, "websocket.close.code") == 1006
    assert attribute(span, "websocket.close.initiator") == "client"
    assert span.status.status_code is StatusCode.UNSET


async def test_client_drop_while_server_sends_ends_span_once_with_1006(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/flood"), open_timeout=TIMEOUT) as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # the server is in its send loop
        ws.transport.abort()

    span = await only_span(exporter, server, "WS /flood")
    assert attribute(span, "websocket.close.code") == 1006
    assert attribute(span, "websocket.close.initiator") == "client"
    assert span.status.status_code is StatusCode.UNSET
    assert attribute(span, "websocket.messages.sent") >= 1


# --- handshake rejected -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/guarded/unauthorized", "/guarded/forbidden", "/close-before-accept"])
async def test_handshake_rejected_is_403_without_accept(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter, path: str
) -> None:
    server, _ = served
    assert await handshake_status(server.url(path)) == 403

    span = await only_span(exporter, server, f"WS {path}")
    assert attribute(span, "http.response.status_code") == 403
    assert attribute(span, "http.route") == path
    assert "websocket.accept" not in event_names(span)
    assert span.status.status_code is StatusCode.UNSET


async def test_unknown_route_is_named_ws_without_route(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    assert await handshake_status(server.url("/no/such/route")) == 403

    span = await only_span(exporter, server, "WS")
    assert "http.route" not in (span.attributes or {})
    assert attribute(span, "url.path") == "/no/such/route"
    assert attribute(span, "http.response.status_code") == 403
    assert "websocket.accept" not in event_names(span)
    assert span.status.status_code is StatusCode.UNSET


# --- server shutdown --------------------------------------------------------------------------------------------


async def test_server_shutdown_ends_every_open_session_without_error(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, handle = served
    clients = [await connect(server.url(f"/wait/c{index}"), open_timeout=TIMEOUT) for index in range(3)]
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: len(handle.processor.sessions(state="open")) == 3,
            timeout=TIMEOUT,
            what="3 open sessions",
        )
        await stop(server)
        client_closes = [await await_close(ws) for ws in clients]
    finally:
        for ws in clients:
            await ws.close()

    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == [WAIT] * 3
    assert {attribute(span, "url.path") for span in spans} == {"/wait/c0", "/wait/c1", "/wait/c2"}
    assert all(span.status.status_code is StatusCode.UNSET for span in spans)
    # uvicorn (websockets-sansio) sends each client a 1012 close frame and gives the app a 1012 disconnect.
    assert client_closes == [(1012, "")] * 3
    assert [attribute(span, "websocket.close.code") for span in spans] == [1012] * 3


async def test_server_shutdown_close_is_initiated_by_server(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    async with connect(server.url("/wait/restart"), open_timeout=TIMEOUT) as ws:
        await stop(server)
        assert await await_close(ws) == (1012, "")

    [span] = exporter.get_finished_spans()
    assert attribute(span, "websocket.close.code") == 1012
    # The client sent no close frame: uvicorn closed the connection because the server is going down.
    assert attribute(span, "websocket.close.initiator") == "server"


async def test_handler_cancelled_at_shutdown_ends_span_once(
    make_instrumented_app: MakeApp, live_server: StartServer, exporter: InMemorySpanExporter
) -> None:
    app, _ = make_instrumented_app(ALL_HANDLERS)
    server = live_server(app, timeout_graceful_shutdown=1)
    async with connect(server.url("/ignore-disconnect"), open_timeout=TIMEOUT) as ws:
        await stop(server)  # the handler never reads the disconnect: uvicorn cancels it
        assert await await_close(ws) == (1012, "")

    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["WS /ignore-disconnect"]
    assert spans[0].status.status_code is not StatusCode.ERROR


# --- exactly once -----------------------------------------------------------------------------------------------


async def test_each_connection_produces_exactly_one_span(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    for index in range(5):
        async with connect(server.url(f"/echo/r{index}"), open_timeout=TIMEOUT) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    await spans_after(exporter, 5)
    await stop(server)
    assert len(spans_named(exporter, ECHO)) == 5
    assert len(exporter.get_finished_spans()) == 5
    assert len({span.context.span_id for span in exporter.get_finished_spans()}) == 5


async def test_instrument_app_twice_still_one_span_per_connection(
    make_instrumented_app: MakeApp,
    live_server: StartServer,
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo])
    assert instrument_app(app, tracer_provider=provider) is handle
    server = live_server(app)
    for _ in range(2):
        async with connect(server.url("/echo/twice"), open_timeout=TIMEOUT) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    await spans_after(exporter, 2)
    await stop(server)
    assert [span.name for span in exporter.get_finished_spans()] == [ECHO, ECHO]
    assert len(handle.processor.sessions()) == 2


# --- recent sessions --------------------------------------------------------------------------------------------


async def test_recent_sessions_show_live_then_closed_newest_first(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, handle = served
    sessions = handle.processor.sessions

    async def until(predicate: Callable[[], object], what: str) -> None:
        await asyncio.to_thread(wait_for, predicate, timeout=TIMEOUT, what=what)

    async with connect(server.url("/echo/first"), open_timeout=TIMEOUT) as ws:
        await ws.send("one")
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        [live] = sessions()  # the echo came back, so the session is recorded and still connected
        assert live["state"] == "open"
        assert live["ended_at"] is None
        assert live["path"] == "/echo/first"
        assert live["route"] == "/echo/{room}"
        assert live["close_code"] is None
        assert live["messages_received"] == 1
        await asyncio.wait_for(ws.close(code=4002, reason="done"), TIMEOUT)
    await until(lambda: sessions()[0]["state"] == "closed", "the first session to close")
    [closed] = sessions()
    assert closed["close_code"] == 4002
    assert closed["close_reason"] == "done"
    assert closed["close_initiator"] == "client"
    assert closed["ended_at"] is not None
    assert closed["messages_received"] == 1
    assert closed["messages_sent"] == 1
    [span] = await spans_after(exporter, 1)
    assert closed["span_id"] == format(span.context.span_id, "016x")
    assert closed["trace_id"] == format(span.context.trace_id, "032x")

    async with connect(server.url("/echo/second"), open_timeout=TIMEOUT) as ws:
        await ws.send("two")
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        newest, older = sessions()
        assert (newest["path"], newest["state"]) == ("/echo/second", "open")
        assert (older["path"], older["state"]) == ("/echo/first", "closed")
        assert sessions(state="open") == [newest]
    await until(lambda: sessions()[0]["state"] == "closed", "the second session to close")
    assert [(s["path"], s["state"], s["close_code"]) for s in sessions()] == [
        ("/echo/second", "closed", 1000),
        ("/echo/first", "closed", 4002),
    ]


# --- trace context ----------------------------------------------------------------------------------------------


async def test_traceparent_header_makes_remote_parent(
    served: tuple[LiveServer, Instrumentation], exporter: InMemorySpanExporter
) -> None:
    server, _ = served
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    async with connect(server.url("/echo/traced"), additional_headers=headers, open_timeout=TIMEOUT) as ws:
        await ws.send("x")
        await asyncio.wait_for(ws.recv(), TIMEOUT)

    span = await only_span(exporter, server, ECHO)
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent_id
    assert format(span.context.trace_id, "032x") == trace_id
