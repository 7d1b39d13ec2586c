"""Messages over a real uvicorn server and a real ``websockets`` client: sizes, previews, limits, handler styles.

A few cases that a real server cannot produce (odd ASGI messages, a scope without ``client``) drive the
instrumented app's ASGI callable directly with in-memory ``receive``/``send``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar, WebSocket, asgi, websocket, websocket_listener, websocket_stream
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.handlers import WebsocketListener
from litestar.types import Receive, Scope, Send
from opentelemetry.trace import SpanKind, StatusCode
from websockets.asyncio.client import ClientConnection, connect

from litestar_ws_otel import WebSocketTelemetryConfig, WebSocketTelemetryPlugin
from tests.apps import echo
from tests.integration.conftest import attribute, event_names, events_named, finished_spans
from tests.litestar_compat import OpenTelemetryConfig, OpenTelemetryPlugin, needs_exclude_spans
from tests.servers import wait_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from litestar_ws_otel import Instrumentation
    from tests.servers import LiveServer

    MakeApp = Callable[..., tuple[Litestar, Instrumentation]]
    StartServer = Callable[..., LiveServer]
    ProviderAndExporter = tuple[TracerProvider, InMemorySpanExporter]

pytestmark = pytest.mark.integration

TIMEOUT = 20.0
MAX_PAYLOAD = 1024
ONE_MB = 1_000_000
INSTRUMENTATION_NAME = "litestar_ws_otel"

PAYLOAD = "websocket.message.payload"
TRUNCATED = "websocket.message.truncated"
TYPE = "websocket.message.type"
SIZE = "websocket.message.size"
MESSAGE_ID = "websocket.message.id"
RECEIVE = "websocket.receive"
SEND = "websocket.send"


# --- the apps' handlers --------------------------------------------------------------------------


@websocket("/health")
async def health(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        await socket.send_text("ok")


# Handlers read path parameters and the channels plugin from the socket, as every Litestar the suite runs
# on allows: 2.15 has neither ``FromPath`` (2.22) nor ``NamedDependency`` (2.23), and newer releases
# deprecate a bare ``room: str``.


@websocket_listener("/listen/{room:str}")
async def listen(data: str, socket: WebSocket[Any, Any, Any]) -> str:
    return f"{socket.path_params['room']}:{data}"


class ShoutListener(WebsocketListener):
    path = "/shout"

    async def on_receive(self, data: str) -> str:
        return data.upper()


TICKS = 5


@websocket_stream("/ticks")
async def ticks() -> AsyncGenerator[str, None]:
    for index in range(TICKS):
        yield f"tick {index}"


@websocket("/feed/{room:str}")
async def feed(socket: WebSocket[Any, Any, Any]) -> None:
    """Subscribe first, then say ``ready``: a client that saw ``ready`` cannot publish too early."""
    room, channels = socket.path_params["room"], socket.app.plugins.get(ChannelsPlugin)
    await socket.accept()

    async def forward(event: bytes) -> None:
        await socket.send_text(event.decode())

    async with channels.start_subscription([room]) as subscriber:
        await socket.send_text("ready")
        async with subscriber.run_in_background(forward):
            while (await socket.receive())["type"] != "websocket.disconnect":
                continue


@websocket_listener("/publish/{room:str}")
async def publish(data: str, socket: WebSocket[Any, Any, Any]) -> str:
    channels = socket.app.plugins.get(ChannelsPlugin)
    channels.publish(data, [socket.path_params["room"]])  # delivered by the plugin's background tasks
    return "queued"


# --- helpers -------------------------------------------------------------------------------------


async def recv(ws: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def roundtrip(ws: ClientConnection, message: str | bytes) -> str | bytes:
    await ws.send(message)
    return await recv(ws)


async def until_closed(ws: ClientConnection) -> list[str | bytes]:
    """Every message until the server closes normally (``async for`` ends on a 1000/1001 close)."""
    return [message async for message in ws]


def client(url: str, **kwargs: Any) -> connect:
    kwargs.setdefault("max_size", 4 * ONE_MB)
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    return connect(url, **kwargs)


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = finished_spans(exporter, 1, timeout=TIMEOUT)
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def message_events(span: ReadableSpan) -> list[Event]:
    return [event for event in span.events if event.name in (RECEIVE, SEND)]


def event_attributes(event: Event) -> dict[str, Any]:
    return dict(event.attributes or {})


def span_dump(span: ReadableSpan) -> str:
    """Everything the span carries, as text: name, attributes, events and their attributes, links, status."""
    return str(span.to_json(indent=None))


def assert_utf8_prefix_preview(preview: str, original: str) -> None:
    encoded = preview.encode("utf-8")  # raises if the preview is not valid UTF-8 (lone surrogates)
    assert len(encoded) <= MAX_PAYLOAD
    assert len(encoded) > MAX_PAYLOAD - 4, "the preview should keep as many whole characters as fit"
    assert original.startswith(preview)
    assert encoded.decode("utf-8") == preview


async def drive(app: Litestar, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run one WebSocket connection through ``app``'s ASGI callable with in-memory ``receive``/``send``."""
    pending = list(incoming)
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        if pending:
            return pending.pop(0)
        return {"type": "websocket.disconnect", "code": 1000, "reason": ""}

    async def send(message: Any) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), TIMEOUT)  # type: ignore[arg-type]
    return sent


def websocket_scope(path: str, **overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"user-agent", b"drive")],
        "subprotocols": [],
        "extensions": {},
        "state": {},
    }
    scope.update(overrides)
    return scope


# --- 1. empty messages ---------------------------------------------------------------------------


async def test_empty_text_and_binary_messages_have_size_zero_and_are_counted(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo])
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "") == ""
        assert await roundtrip(ws, b"") == b""

    span = only_span(exporter)
    assert attribute(span, "websocket.messages.received") == 2
    assert attribute(span, "websocket.messages.sent") == 2
    assert attribute(span, "websocket.bytes.received") == 0
    assert attribute(span, "websocket.bytes.sent") == 0
    for name in (RECEIVE, SEND):
        text, binary = (event_attributes(event) for event in events_named(span, name))
        assert text[TYPE] == "text"
        assert text[SIZE] == 0
        assert text[PAYLOAD] == ""
        assert text[TRUNCATED] is False
        assert binary[TYPE] == "binary"
        assert binary[SIZE] == 0
        assert PAYLOAD not in binary  # no binary preview unless capture_binary_preview


# --- 2. one-megabyte messages --------------------------------------------------------------------


async def test_one_megabyte_messages_echo_unchanged_and_previews_are_truncated(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    config = WebSocketTelemetryConfig(capture_binary_preview=True)
    app, _ = make_instrumented_app([echo], config=config)
    server = live_server(app)
    text = "".join(chr(ord("a") + i % 26) for i in range(ONE_MB))
    binary = bytes(i % 251 for i in range(ONE_MB))

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, text) == text
        assert await roundtrip(ws, binary) == binary

    span = only_span(exporter)
    assert attribute(span, "websocket.bytes.received") == 2 * ONE_MB
    assert attribute(span, "websocket.bytes.sent") == 2 * ONE_MB
    for name in (RECEIVE, SEND):
        text_event, binary_event = (event_attributes(event) for event in events_named(span, name))
        assert text_event[TYPE] == "text"
        assert text_event[SIZE] == ONE_MB
        assert len(text_event[PAYLOAD].encode("utf-8")) <= MAX_PAYLOAD
        assert text.startswith(text_event[PAYLOAD])
        assert text_event[TRUNCATED] is True
        assert binary_event[TYPE] == "binary"
        assert binary_event[SIZE] == ONE_MB
        assert binary_event[PAYLOAD] == binary[: config.binary_preview_bytes].hex()
        assert binary_event[TRUNCATED] is True


# --- 3. non-ASCII truncation ---------------------------------------------------------------------


NON_ASCII_TEXTS = {
    "two-byte": "é" * 2000,
    "two-byte-odd-start": "a" + "é" * 2000,
    "three-byte": "中" * 500,
    "emoji": "😀" * 600,
    "emoji-odd-start": "xy" + "🎉" * 400,
    "emoji-zwj-mixed": "héllo 👩‍👩‍👧 " * 100,
}


@pytest.mark.parametrize("text", list(NON_ASCII_TEXTS.values()), ids=list(NON_ASCII_TEXTS))
async def test_non_ascii_text_is_truncated_on_a_utf8_character_boundary(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer, text: str
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo])
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, text) == text

    span = only_span(exporter)
    size = len(text.encode("utf-8"))
    assert attribute(span, "websocket.bytes.received") == size
    assert attribute(span, "websocket.bytes.sent") == size
    for name in (RECEIVE, SEND):
        (event,) = events_named(span, name)
        attributes = event_attributes(event)
        assert attributes[SIZE] == size
        assert attributes[TRUNCATED] is True
        assert_utf8_prefix_preview(attributes[PAYLOAD], text)


# --- 4. payload capture --------------------------------------------------------------------------


async def test_payload_capture_is_on_in_debug_mode_by_default(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo], debug=True)
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "hello") == "hello"

    span = only_span(exporter)
    assert handle.capture_payloads is True
    for event in message_events(span):
        assert event_attributes(event)[PAYLOAD] == "hello"
        assert event_attributes(event)[TRUNCATED] is False
    assert [message["payload"] for message in handle.processor.sessions()[0]["messages"]] == ["hello", "hello"]


async def test_payload_capture_is_off_when_not_in_debug_mode(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo], debug=False)
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "private words") == "private words"
        assert await roundtrip(ws, b"\x00private") == b"\x00private"

    span = only_span(exporter)
    events = message_events(span)
    assert len(events) == 4
    for event in events:
        assert PAYLOAD not in event_attributes(event)
        assert TRUNCATED not in event_attributes(event)
    assert "private" not in span_dump(span)
    assert [message["payload"] for message in handle.processor.sessions()[0]["messages"]] == [None] * 4


async def test_payload_capture_configured_on_works_without_debug_mode(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo], config=WebSocketTelemetryConfig(capture_payloads=True), debug=False)
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "visible") == "visible"
        assert await roundtrip(ws, b"\x01\x02") == b"\x01\x02"

    span = only_span(exporter)
    text_events = [event_attributes(e) for e in message_events(span) if event_attributes(e)[TYPE] == "text"]
    binary_events = [event_attributes(e) for e in message_events(span) if event_attributes(e)[TYPE] == "binary"]
    assert [event[PAYLOAD] for event in text_events] == ["visible", "visible"]
    assert len(binary_events) == 2
    assert all(PAYLOAD not in event for event in binary_events)  # binary previews need their own switch


async def test_binary_preview_is_hex_of_binary_preview_bytes_only_when_enabled(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    config = WebSocketTelemetryConfig(capture_binary_preview=True, binary_preview_bytes=4)
    app, _ = make_instrumented_app([echo], config=config)
    server = live_server(app)
    short, long = b"\xde\xad", b"\x00\x01\x02\x03\x04\x05\xff"

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, short) == short
        assert await roundtrip(ws, long) == long

    span = only_span(exporter)
    for name in (RECEIVE, SEND):
        first, second = (event_attributes(event) for event in events_named(span, name))
        assert (first[TYPE], first[SIZE], first[PAYLOAD], first[TRUNCATED]) == ("binary", 2, "dead", False)
        assert (second[TYPE], second[SIZE], second[PAYLOAD], second[TRUNCATED]) == ("binary", 7, "00010203", True)


async def test_redact_payload_hook_is_applied_to_previews_not_to_the_app(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    calls: list[tuple[str | bytes, str]] = []

    def redact(payload: str | bytes, direction: str) -> str | bytes | None:
        calls.append((payload, direction))
        if isinstance(payload, str):
            return payload.replace("hunter2", "***")
        return None

    config = WebSocketTelemetryConfig(redact_payload=redact, capture_binary_preview=True)
    app, _ = make_instrumented_app([echo], config=config)
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "password=hunter2") == "password=hunter2"
        assert await roundtrip(ws, b"hunter2") == b"hunter2"

    span = only_span(exporter)
    assert sorted(calls, key=repr) == sorted(
        [
            ("password=hunter2", "received"),
            ("password=hunter2", "sent"),
            (b"hunter2", "received"),
            (b"hunter2", "sent"),
        ],
        key=repr,
    )
    for name in (RECEIVE, SEND):
        text, binary = (event_attributes(event) for event in events_named(span, name))
        assert text[PAYLOAD] == "password=***"
        assert text[SIZE] == len("password=hunter2")  # the size is the real message's
        assert PAYLOAD not in binary  # the hook returned None: no preview
    assert "hunter2" not in span_dump(span)
    assert "68756e74657232" not in span_dump(span)  # nor as hex


async def test_redact_payload_hook_that_raises_drops_the_preview_and_spares_the_app(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter

    def broken(payload: str | bytes, direction: str) -> str | bytes | None:
        raise RuntimeError("redactor bug")

    app, _ = make_instrumented_app([echo], config=WebSocketTelemetryConfig(redact_payload=broken))
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        for index in range(3):
            assert await roundtrip(ws, f"message {index}") == f"message {index}"

    span = only_span(exporter)
    assert attribute(span, "websocket.messages.received") == 3
    assert attribute(span, "websocket.messages.sent") == 3
    assert attribute(span, "websocket.close.code") == 1000
    assert span.status.status_code is StatusCode.UNSET
    events = message_events(span)
    assert len(events) == 6
    assert all(PAYLOAD not in event_attributes(event) for event in events)


# --- 5. per-session event limit ------------------------------------------------------------------


async def test_event_limit_keeps_the_newest_records_and_counters_count_all(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo], config=WebSocketTelemetryConfig(max_messages_per_session=10))
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        for index in range(1, 26):
            assert await roundtrip(ws, f"m{index}") == f"m{index}"

    span = only_span(exporter)
    assert attribute(span, "websocket.messages.received") == 25
    assert attribute(span, "websocket.messages.sent") == 25
    assert attribute(span, "websocket.events.dropped") == 40
    events = message_events(span)
    assert len(events) == 10
    # Each echo completes before the next message is sent, so the newest ten are 21..25 each way.
    assert [(event.name, event_attributes(event)[MESSAGE_ID]) for event in events] == [
        (name, index) for index in range(21, 26) for name in (RECEIVE, SEND)
    ]
    assert [event_attributes(event)[PAYLOAD] for event in events] == [
        f"m{index}" for index in range(21, 26) for _ in (RECEIVE, SEND)
    ]
    timestamps = [event.timestamp for event in events]
    assert timestamps == sorted(timestamps)
    assert event_names(span)[0] == "websocket.accept"
    assert event_names(span)[-1] == "websocket.close"
    (session,) = handle.processor.sessions()
    assert [(m["direction"], m["id"]) for m in session["messages"]] == [
        (direction, index) for index in range(21, 26) for direction in ("received", "sent")
    ]


# --- 6. Litestar handler styles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "path", "route", "exchanges"),
    [
        pytest.param(
            listen, "/listen/lobby", "/listen/{room}", [("hi", "lobby:hi"), ("bye", "lobby:bye")], id="function"
        ),
        pytest.param(ShoutListener, "/shout", "/shout", [("quiet", "QUIET")], id="class"),
    ],
)
async def test_websocket_listener_span_is_named_by_route_template(
    provider_and_exporter: ProviderAndExporter,
    make_instrumented_app: MakeApp,
    live_server: StartServer,
    handler: Any,
    path: str,
    route: str,
    exchanges: list[tuple[str, str]],
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([handler])
    server = live_server(app)

    async with client(server.url(path)) as ws:
        for sent, reply in exchanges:
            assert await roundtrip(ws, sent) == reply

    span = only_span(exporter)
    assert span.name == f"WS {route}"
    assert attribute(span, "http.route") == route
    assert attribute(span, "url.path") == path
    assert attribute(span, "websocket.messages.received") == len(exchanges)
    assert attribute(span, "websocket.messages.sent") == len(exchanges)
    assert [(e.name, event_attributes(e)[PAYLOAD]) for e in message_events(span)] == [
        event for sent, reply in exchanges for event in ((RECEIVE, sent), (SEND, reply))
    ]


async def test_websocket_stream_messages_sent_from_a_child_task_are_recorded(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([ticks])
    server = live_server(app)

    async with client(server.url("/ticks")) as ws:
        received = await asyncio.wait_for(until_closed(ws), TIMEOUT)
        assert ws.close_code == 1000

    expected = [f"tick {index}" for index in range(TICKS)]
    assert received == expected
    span = only_span(exporter)
    assert span.name == "WS /ticks"
    assert attribute(span, "websocket.messages.received") == 0
    assert attribute(span, "websocket.messages.sent") == TICKS
    assert attribute(span, "websocket.bytes.sent") == sum(len(text) for text in expected)
    assert attribute(span, "websocket.close.initiator") == "server"
    assert attribute(span, "websocket.close.code") == 1000
    sends = events_named(span, SEND)
    assert [event_attributes(e)[MESSAGE_ID] for e in sends] == list(range(1, TICKS + 1))
    assert [event_attributes(e)[PAYLOAD] for e in sends] == expected


async def test_channels_plugin_messages_published_elsewhere_are_recorded_on_the_subscriber(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    channels = ChannelsPlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True)
    app, _ = make_instrumented_app([feed, publish], plugins=[channels])
    server = live_server(app)
    news = ["first", "second", "third ünïcode"]

    async with client(server.url("/feed/news")) as subscriber:
        assert await recv(subscriber) == "ready"
        async with client(server.url("/publish/news")) as publisher:
            for item in news:
                assert await roundtrip(publisher, item) == "queued"
        delivered = [await recv(subscriber) for _ in news]
    assert delivered == news

    spans = finished_spans(exporter, 2, timeout=TIMEOUT)
    assert sorted(span.name for span in spans) == ["WS /feed/{room}", "WS /publish/{room}"]
    (feed_span,) = (span for span in spans if span.name == "WS /feed/{room}")
    (publish_span,) = (span for span in spans if span.name == "WS /publish/{room}")
    assert attribute(feed_span, "websocket.messages.received") == 0
    assert attribute(feed_span, "websocket.messages.sent") == 1 + len(news)
    assert attribute(feed_span, "websocket.bytes.sent") == sum(len(text.encode()) for text in ["ready", *news])
    assert [event_attributes(e)[PAYLOAD] for e in events_named(feed_span, SEND)] == ["ready", *news]
    assert attribute(publish_span, "websocket.messages.received") == len(news)
    assert attribute(publish_span, "websocket.messages.sent") == len(news)
    assert [event_attributes(e)[PAYLOAD] for e in events_named(publish_span, RECEIVE)] == news
    assert feed_span.context.trace_id != publish_span.context.trace_id


# --- 7. security defaults ------------------------------------------------------------------------


async def test_secret_headers_never_appear_in_the_span(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo])
    server = live_server(app)
    headers = {"Authorization": "Bearer auth-secret-0001", "Cookie": "session=cookie-secret-0002"}

    async with client(server.url("/echo"), additional_headers=headers) as ws:
        key = ws.request.headers["Sec-WebSocket-Key"] if ws.request is not None else None
        assert await roundtrip(ws, "x") == "x"
    assert key

    span = only_span(exporter)
    dump = span_dump(span)
    sessions = json.dumps(handle.processor.sessions())
    for secret in ("auth-secret-0001", "cookie-secret-0002", key):
        assert secret not in dump
        assert secret not in sessions
    for name in ("authorization", "cookie", "sec-websocket-key"):
        assert f"http.request.header.{name}" not in (span.attributes or {})


@websocket("/k8s")
async def accept_channel_protocol(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept(subprotocols="v4.channel.k8s.io")
    await socket.send_text(await socket.receive_text())
    await socket.close()


async def test_tokens_offered_as_subprotocols_never_appear(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([accept_channel_protocol])
    server = live_server(app)
    token = "ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklpSjkuc3VicHJvdG9jb2wtc2VjcmV0"
    offered = [f"base64url.bearer.authorization.k8s.io.{token}", "v4.channel.k8s.io"]

    async with client(server.url("/k8s"), subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "v4.channel.k8s.io"
        assert await roundtrip(ws, "x") == "x"

    span = only_span(exporter)
    assert token not in span_dump(span)
    assert token not in json.dumps(handle.processor.sessions())
    assert attribute(span, "http.request.header.sec-websocket-protocol") == ("[REDACTED], v4.channel.k8s.io",)
    assert attribute(span, "websocket.subprotocol") == "v4.channel.k8s.io"


async def test_allow_listed_secret_headers_are_shown_redacted(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    config = WebSocketTelemetryConfig(
        capture_headers=("origin", "authorization", "cookie", "sec-websocket-key", "x-api-key")
    )
    app, _ = make_instrumented_app([echo], config=config)
    server = live_server(app)
    headers = {"Authorization": "Bearer auth-secret-0003", "Cookie": "c=cookie-secret-0004", "X-Api-Key": "k-0005"}

    async with client(server.url("/echo"), additional_headers=headers, origin="http://example.test") as ws:
        key = ws.request.headers["Sec-WebSocket-Key"] if ws.request is not None else None
        assert await roundtrip(ws, "x") == "x"
    assert key

    span = only_span(exporter)
    for name in ("authorization", "cookie", "sec-websocket-key", "x-api-key"):
        assert attribute(span, f"http.request.header.{name}") == ("[REDACTED]",)
    assert attribute(span, "http.request.header.origin") == ("http://example.test",)
    dump = span_dump(span)
    for secret in ("auth-secret-0003", "cookie-secret-0004", "k-0005", key):
        assert secret not in dump


async def test_secret_query_values_are_redacted_in_span_and_panel_store(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo])
    server = live_server(app)

    async with client(server.url("/echo?token=abc&x=1")) as ws:
        assert await roundtrip(ws, "x") == "x"
        live = wait_for(handle.processor.sessions, timeout=TIMEOUT, what="the live session in the panel store")
        assert live[0]["path"] == "/echo?token=REDACTED&x=1"

    span = only_span(exporter)
    assert attribute(span, "url.query") == "token=REDACTED&x=1"
    assert attribute(span, "url.path") == "/echo"
    assert "token=abc" not in span_dump(span)
    (session,) = handle.processor.sessions()
    assert session["path"] == "/echo?token=REDACTED&x=1"
    assert "token=abc" not in json.dumps(session)


# --- 8. exclude_paths ----------------------------------------------------------------------------


async def test_excluded_path_produces_no_span_and_still_works(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, handle = make_instrumented_app([echo, health], config=WebSocketTelemetryConfig(exclude_paths=(r"^/health$",)))
    server = live_server(app)

    async with client(server.url("/health")) as ws:
        assert await roundtrip(ws, "ping") == "ok"
        # A traced session is in the store from the first received message on, so it would show now.
        assert handle.processor.sessions() == []
    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "ping") == "ping"

    span = only_span(exporter)
    assert span.name == "WS /echo"
    assert [session["path"] for session in handle.processor.sessions()] == ["/echo"]


# --- 9. Litestar's OpenTelemetryPlugin -----------------------------------------------------------


@pytest.mark.parametrize(
    "exclude_spans",
    [
        pytest.param(None, id="all-spans"),
        pytest.param(
            ["receive", "send"],
            id="exclude-receive-send",
            marks=needs_exclude_spans,
        ),
    ],
)
async def test_with_litestar_opentelemetry_plugin_there_is_one_server_span_and_ours_is_its_child(
    provider_and_exporter: ProviderAndExporter,
    make_instrumented_app: MakeApp,
    live_server: StartServer,
    exclude_spans: list[Any] | None,
) -> None:
    provider, exporter = provider_and_exporter
    options = {} if exclude_spans is None else {"exclude_spans": exclude_spans}
    otel = OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider, **options))
    app, _ = make_instrumented_app([echo], plugins=[otel])
    server = live_server(app)

    async with client(server.url("/echo")) as ws:
        assert await roundtrip(ws, "hello") == "hello"

    def both_ended() -> list[ReadableSpan] | None:
        spans = list(exporter.get_finished_spans())
        ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == INSTRUMENTATION_NAME]
        servers = [s for s in spans if s.kind is SpanKind.SERVER]
        return spans if ours and servers else None

    spans = wait_for(both_ended, timeout=TIMEOUT, what="our span and Litestar's server span") or []
    ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == INSTRUMENTATION_NAME]
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(ours) == 1
    assert len(servers) == 1, [(s.name, s.instrumentation_scope) for s in servers]
    (span,), (server_span,) = ours, servers
    assert span.kind is SpanKind.INTERNAL
    assert span.parent is not None
    assert span.parent.span_id == server_span.context.span_id
    assert span.context.trace_id == server_span.context.trace_id
    assert span.name == "WS /echo"
    assert attribute(span, "websocket.messages.received") == 1
    assert attribute(span, "websocket.messages.sent") == 1
    if exclude_spans:
        assert not [s for s in spans if s is not span and s is not server_span]


# --- 10. the plugin form -------------------------------------------------------------------------


def _shape(span: ReadableSpan) -> dict[str, Any]:
    """What must match between two spans of the same conversation: all but times, ids and ports."""
    varying = {"client.port", "server.port"}
    return {
        "name": span.name,
        "kind": span.kind,
        "status": span.status.status_code,
        "attributes": {k: v for k, v in (span.attributes or {}).items() if k not in varying},
        "events": [(event.name, event_attributes(event)) for event in span.events],
    }


async def test_plugin_form_produces_the_same_span_and_sets_its_handle_on_startup(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    provider, exporter = provider_and_exporter
    config = WebSocketTelemetryConfig(max_messages_per_session=20)
    plugin = WebSocketTelemetryPlugin(config, tracer_provider=provider)
    plugin_app = Litestar(route_handlers=[echo], plugins=[plugin], debug=True)
    assert plugin.handle is None

    async def conversation(url: str) -> None:
        async with client(url, user_agent_header="same-agent") as ws:
            assert await roundtrip(ws, "one") == "one"
            assert await roundtrip(ws, b"\x02") == b"\x02"

    plugin_server = live_server(plugin_app)
    assert plugin.handle is not None
    assert plugin.handle.config is config
    await conversation(plugin_server.url("/echo"))
    (plugin_span,) = finished_spans(exporter, 1, timeout=TIMEOUT)
    assert plugin.handle.processor.sessions()[0]["span_id"] == format(plugin_span.context.span_id, "016x")

    app, _ = make_instrumented_app([echo], config=config)
    await conversation(live_server(app).url("/echo"))
    spans = finished_spans(exporter, 2, timeout=TIMEOUT)
    assert len(spans) == 2
    assert _shape(spans[1]) == _shape(plugin_span)


# --- 11. bad input that must not reach the app ---------------------------------------------------


async def _raw_handshake_echo(port: int, raw_headers: bytes, text: str) -> tuple[bytes, str]:
    """Handshake with header bytes exactly as given, echo one text frame, close with 1000.

    A client library would encode the header values itself (websockets 16 as UTF-8, 17 as Latin-1),
    so the handshake is written by hand to put the bytes ``ff fe`` on the wire whatever the version.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + raw_headers + b"\r\n"
        )
        status_line = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)).split(b"\r\n", 1)[0]

        def masked_frame(opcode: int, payload: bytes) -> bytes:
            mask = b"\x01\x02\x03\x04"
            body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
            return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body

        writer.write(masked_frame(0x1, text.encode()))
        header = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
        echoed = (await asyncio.wait_for(reader.readexactly(header[1] & 0x7F), TIMEOUT)).decode()
        writer.write(masked_frame(0x8, (1000).to_bytes(2, "big")))
        close_header = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
        await asyncio.wait_for(reader.readexactly(close_header[1] & 0x7F), TIMEOUT)
        return status_line, echoed
    finally:
        writer.close()
        await writer.wait_closed()


async def test_non_utf8_handshake_headers_do_not_break_the_connection(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp, live_server: StartServer
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo], config=WebSocketTelemetryConfig(capture_headers=("origin", "x-raw")))
    server = live_server(app)

    status_line, echoed = await _raw_handshake_echo(
        server.port, b"X-Raw: \xff\xfe\r\nUser-Agent: agent\xff\xfe\r\n", "still fine"
    )

    assert status_line == b"HTTP/1.1 101 Switching Protocols"
    assert echoed == "still fine"
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert attribute(span, "http.request.header.x-raw") == ("\xff\xfe",)
    assert attribute(span, "user_agent.original") == "agent\xff\xfe"
    assert attribute(span, "websocket.messages.received") == 1
    assert attribute(span, "websocket.close.code") == 1000


@asgi("/raw", copy_scope=False)
async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app that sends a message type no server knows and gets one from the server."""
    emit: Callable[[dict[str, Any]], Awaitable[None]] = send  # type: ignore[assignment]  # off-spec messages
    take: Callable[[], Awaitable[dict[str, Any]]] = receive  # type: ignore[assignment]
    assert (await take())["type"] == "websocket.connect"
    await emit({"type": "websocket.accept"})
    await emit({"type": "websocket.unexpected", "detail": 1})
    message = await take()
    await emit({"type": "websocket.send", "text": message["text"]})
    assert (await take())["type"] == "websocket.surprise"
    assert (await take())["type"] == "websocket.disconnect"


async def test_unexpected_asgi_message_types_pass_through_untouched(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([raw])

    sent = await drive(
        app,
        websocket_scope("/raw"),
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.surprise"},
            {"type": "websocket.disconnect", "code": 1000, "reason": ""},
        ],
    )

    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.unexpected", "detail": 1},
        {"type": "websocket.send", "text": "hi"},
    ]
    span = only_span(exporter)
    assert span.name == "WS /raw"
    assert span.status.status_code is StatusCode.UNSET
    assert attribute(span, "websocket.messages.received") == 1
    assert attribute(span, "websocket.messages.sent") == 1
    assert attribute(span, "websocket.close.initiator") == "client"
    assert event_names(span) == ["websocket.accept", RECEIVE, SEND, "websocket.close"]


async def test_scope_without_client_is_traced_without_client_attributes(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo])
    scope = websocket_scope("/echo")
    del scope["client"]

    sent = await drive(app, scope, [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hi"}])

    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "hi"
    span = only_span(exporter)
    assert span.name == "WS /echo"
    assert "client.address" not in (span.attributes or {})
    assert "client.port" not in (span.attributes or {})
    assert attribute(span, "websocket.messages.received") == 1
    assert attribute(span, "websocket.messages.sent") == 1


async def test_scope_without_path_template_gets_a_bare_ws_span(
    provider_and_exporter: ProviderAndExporter, make_instrumented_app: MakeApp
) -> None:
    _, exporter = provider_and_exporter
    app, _ = make_instrumented_app([echo], debug=False)  # debug mode would log the 404 traceback
    scope = websocket_scope("/nowhere/42")

    sent = await drive(app, scope, [{"type": "websocket.connect"}])

    assert "path_template" not in scope  # no route matched, so Litestar never set one
    assert [message["type"] for message in sent] == ["websocket.close"]
    span = only_span(exporter)
    assert span.name == "WS"
    assert "http.route" not in (span.attributes or {})
    assert attribute(span, "url.path") == "/nowhere/42"
    assert attribute(span, "http.response.status_code") == 403
    assert attribute(span, "websocket.close.initiator") == "server"
