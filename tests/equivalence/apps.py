"""The catalogue: Litestar apps built the ways Litestar's documentation builds them, each with a client script.

The harness in ``test_equivalence.py`` runs every entry plain and instrumented, through Litestar's
``TestClient`` and through uvicorn with a ``websockets`` client, and compares what both sides saw.
A new app shape is one more ``Case`` here, so the promise that an instrumented app cannot tell it is
instrumented is checked for it by construction.

Each factory builds a fresh app and fresh route handlers on every call: Litestar's handler objects
keep a reference to the last app they were registered on, so a handler shared between the plain and
the instrumented app would make the two runs share state. Handlers write what they receive to
``seen`` *before* they answer, so that the order of ``seen`` follows the client's script and never
the scheduler.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from litestar import Litestar, WebSocket, websocket, websocket_listener, websocket_stream
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection
from litestar.datastructures import ImmutableState, State
from litestar.di import Provide
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    WebSocketException,
)
from litestar.handlers import BaseRouteHandler, WebsocketListener

from tests.litestar_compat import FromPath, FromQuery, NamedDependency

__all__ = (
    "APP_LOGGER",
    "CATALOGUE",
    "Case",
    "Client",
    "Connection",
    "Event",
    "HandshakeRefused",
    "Seen",
)

APP_LOGGER = "equivalence.app"
"""The catalogue apps' own logger; its records at every level are part of what is compared."""

logger = logging.getLogger(APP_LOGGER)
logger.setLevel(logging.DEBUG)  # Litestar's logging config sets the root to INFO; the app's debug lines count too

Seen = list[Any]
"""What the app's handlers, guards, dependencies and hooks received, in the order they received it."""

Event = tuple[Any, ...]
"""What a client saw: ``("text", str)``, ``("bytes", bytes)`` or ``("close", code, reason)``."""

ONE_MB = 1_000_000


class HandshakeRefused(Exception):
    """The app closed the connection before accepting it; the client's transcript holds the details."""


class Connection(Protocol):
    """One client WebSocket; both transports implement it, and record every step in the run's transcript."""

    def send_text(self, data: str) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...

    def receive(self) -> Event:
        """The next message, or the server's close; bounded by the harness's timeout."""
        ...

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side; returns once the app has finished with the connection."""
        ...


class Client(Protocol):
    """Opens connections to the app under test."""

    def connect(
        self, path: str, *, subprotocols: Sequence[str] = (), headers: Mapping[str, str] | None = None
    ) -> Connection:
        """Open ``path`` (with its query string); raise ``HandshakeRefused`` when the app refuses it."""
        ...


AppFactory = Callable[[Seen], Litestar]
Script = Callable[[Client], None]


@dataclass(frozen=True)
class Case:
    """One app shape: a factory for a fresh app, and what a client does with it."""

    name: str
    build: AppFactory
    script: Script


def expect_refused(client: Client, path: str) -> None:
    """Open ``path`` and require the app to refuse the handshake."""
    try:
        client.connect(path)
    except HandshakeRefused:
        return
    raise AssertionError(f"the app accepted {path}, which it should refuse")


def expect(actual: Event, *expected: Any) -> None:
    """Check what the plain app is documented to do, so that an entry cannot pass by failing the same way twice."""
    if actual[: len(expected)] != expected:
        raise AssertionError(f"expected {expected!r}, got {actual!r}")


async def wait_for_disconnect(socket: WebSocket[Any, Any, Any], seen: Seen) -> None:
    """Read until the client leaves, writing each message to ``seen``: the app sees the client's close code."""
    while True:
        message = await socket.receive()
        seen.append(("received", dict(message)))
        if message["type"] == "websocket.disconnect":
            return


# --- app.state --------------------------------------------------------------------------------------------------


def state_app(seen: Seen) -> Litestar:
    @websocket("/state/mutable")
    async def mutable(socket: WebSocket[Any, Any, Any], state: State) -> None:
        await socket.accept()
        seen.append(("state", copy.deepcopy(state.dict())))
        state.visits += 1
        state.rooms.append(f"room {state.visits}")
        await socket.send_json({"greeting": state.greeting, "visits": state.visits})
        await wait_for_disconnect(socket, seen)

    @websocket("/state/immutable")
    async def immutable(socket: WebSocket[Any, Any, Any], state: ImmutableState) -> None:
        await socket.accept()
        seen.append(("immutable state", copy.deepcopy(state.dict())))
        try:
            state.visits = 100  # type: ignore[attr-defined]
        except Exception as exc:
            seen.append(("assignment refused", type(exc).__name__))
        state.rooms.append("only in the copy")  # ImmutableState deep-copies app.state: the app keeps its list
        await socket.send_json({"rooms": state.rooms})
        await wait_for_disconnect(socket, seen)

    return Litestar(
        route_handlers=[mutable, immutable],
        state=State({"greeting": "hello", "visits": 0, "rooms": ["lobby"], "limits": {"members": 3}}),
    )


def state_script(client: Client) -> None:
    for path in ("/state/mutable", "/state/mutable", "/state/immutable"):
        connection = client.connect(path)
        connection.receive()
        connection.close()


# --- dependencies and guards ------------------------------------------------------------------------------------


def dependencies_app(seen: Seen) -> Litestar:
    def provide_greeting() -> str:
        return "welcome"

    async def provide_title(room: FromPath[str]) -> str:
        return room.title()

    async def provide_ledger() -> AsyncGenerator[list[str], None]:
        ledger: list[str] = []
        yield ledger
        seen.append(("ledger cleaned up", list(ledger)))

    @websocket(
        "/rooms/{room:str}",
        dependencies={"title": Provide(provide_title), "ledger": Provide(provide_ledger)},
    )
    async def room(
        socket: WebSocket[Any, Any, Any],
        greeting: NamedDependency[str],
        title: NamedDependency[str],
        ledger: NamedDependency[list[str]],
        user: FromQuery[str],
    ) -> None:
        seen.append(("resolved", greeting, title, user))
        await socket.accept()
        text = await socket.receive_text()
        ledger.append(text)
        seen.append(("received", text))
        logger.info("%s said %r in %s", user, text, title)
        await socket.send_text(f"{greeting}, {user}: {title} heard {text}")
        await wait_for_disconnect(socket, seen)

    return Litestar(
        route_handlers=[room],
        dependencies={"greeting": Provide(provide_greeting, sync_to_thread=False)},
    )


def dependencies_script(client: Client) -> None:
    connection = client.connect("/rooms/kitchen?user=ann")
    connection.send_text("tea?")
    expect(connection.receive(), "text", "welcome, ann: Kitchen heard tea?")
    connection.close()


def guarded_app(seen: Seen) -> Litestar:
    def members_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        member = connection.query_params.get("member")
        seen.append(("guard", handler.handler_name, member))
        if member != "yes":
            raise PermissionDeniedException("members only")

    async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if "authorization" not in connection.headers:
            raise NotAuthorizedException("sign in first")

    @websocket("/club", guards=[members_only])
    async def club(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        seen.append(("received", await socket.receive_text()))
        await socket.send_text("welcome to the club")
        await wait_for_disconnect(socket, seen)

    return Litestar(route_handlers=[club], guards=[signed_in])


def guard_allows_script(client: Client) -> None:
    connection = client.connect("/club?member=yes", headers={"authorization": "Bearer member"})
    connection.send_text("knock knock")
    expect(connection.receive(), "text", "welcome to the club")
    connection.close()


def guard_refuses_script(client: Client) -> None:
    expect_refused(client, "/club?member=no")  # the app-level guard refuses: no authorization header
    try:
        client.connect("/club?member=no", headers={"authorization": "Bearer guest"})
    except HandshakeRefused:
        return
    raise AssertionError("the route guard let a non-member in")


# --- listeners and streams --------------------------------------------------------------------------------------


def text_listener_app(seen: Seen) -> Litestar:
    def on_accept(socket: WebSocket[Any, Any, Any]) -> None:
        seen.append(("on_accept", dict(socket.path_params)))

    def on_disconnect(socket: WebSocket[Any, Any, Any]) -> None:
        seen.append(("on_disconnect", dict(socket.path_params)))

    @websocket_listener("/listen/{room:str}", on_accept=on_accept, on_disconnect=on_disconnect)
    async def listen(data: str, room: FromPath[str]) -> str:
        seen.append(("heard", room, data))
        logger.debug("heard %r in %s", data, room)
        return f"{room}: {data.upper()}"

    return Litestar(route_handlers=[listen])


def text_listener_script(client: Client) -> None:
    connection = client.connect("/listen/attic")
    for text in ("hello", "", "çà et là"):
        connection.send_text(text)
        expect(connection.receive(), "text", f"attic: {text.upper()}")
    connection.close()


def json_listener_app(seen: Seen) -> Litestar:
    @websocket_listener("/json")
    async def json_listener(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(("json", data))
        return {"echo": data, "keys": sorted(data)}

    return Litestar(route_handlers=[json_listener])


def json_listener_script(client: Client) -> None:
    connection = client.connect("/json")
    connection.send_text('{"b": [1, 2.5, null], "a": "é"}')
    expect(connection.receive(), "text")
    connection.send_text('{"nested": {"list": [{"deep": true}]}, "emoji": "🚀"}')
    expect(connection.receive(), "text")
    connection.send_text("not json")  # Litestar closes the connection for a payload it cannot decode
    expect(connection.receive(), "close")


def listener_class_app(seen: Seen) -> Litestar:
    class Lobby(WebsocketListener):
        """A ``WebsocketListener`` subclass, as Litestar's documentation writes class-based listeners."""

        path = "/lobby"
        dependencies = {"motto": Provide(lambda: "all welcome", sync_to_thread=False)}  # noqa: RUF012

        def on_accept(self, socket: WebSocket[Any, Any, Any], motto: NamedDependency[str]) -> None:
            seen.append(("on_accept", motto))

        def on_disconnect(self, socket: WebSocket[Any, Any, Any]) -> None:
            seen.append(("on_disconnect",))

        async def on_receive(self, data: str, socket: WebSocket[Any, Any, Any]) -> str:
            seen.append(("on_receive", data, socket.url.path))
            return data[::-1]

    return Litestar(route_handlers=[Lobby])


def listener_class_script(client: Client) -> None:
    connection = client.connect("/lobby")
    connection.send_text("stressed")
    expect(connection.receive(), "text", "desserts")
    connection.close(1001, "going away")


def stream_app(seen: Seen) -> Litestar:
    @websocket_stream("/ticks")
    async def ticks() -> AsyncGenerator[dict[str, Any], None]:
        for number in range(3):
            seen.append(("tick", number))
            yield {"tick": number, "label": f"tick {number}"}
        seen.append(("stream done",))

    return Litestar(route_handlers=[ticks])


def stream_script(client: Client) -> None:
    connection = client.connect("/ticks")
    for number in range(3):
        expect(connection.receive(), "text", f'{{"tick":{number},"label":"tick {number}"}}')
    expect(connection.receive(), "close", 1000)


# --- channels ---------------------------------------------------------------------------------------------------


def channels_app(seen: Seen) -> Litestar:
    @websocket("/chat/subscribe")
    async def subscribe(socket: WebSocket[Any, Any, Any], channels: NamedDependency[ChannelsPlugin]) -> None:
        await socket.accept()
        async with channels.start_subscription(["general"]) as subscriber:
            seen.append(("subscribed",))
            await socket.send_text("ready")
            async with subscriber.run_in_background(socket.send_data):
                await wait_for_disconnect(socket, seen)

    @websocket_listener("/chat/publish")
    async def publish(data: str, channels: NamedDependency[ChannelsPlugin]) -> str:
        seen.append(("publishing", data))
        await channels.wait_published(data, ["general"])
        return "published"

    plugin = ChannelsPlugin(
        backend=MemoryChannelsBackend(history=10),
        channels=["general"],
        create_ws_route_handlers=True,  # serves /channels/general: history first, then broadcasts
        ws_handler_send_history=10,
        ws_handler_base_path="/channels/",
    )
    return Litestar(route_handlers=[subscribe, publish], plugins=[plugin])


def channels_script(client: Client) -> None:
    subscriber = client.connect("/chat/subscribe")
    expect(subscriber.receive(), "text", "ready")
    publisher = client.connect("/chat/publish")
    publisher.send_text("hello, everyone")
    expect(publisher.receive(), "text", "published")
    expect(subscriber.receive(), "text", "hello, everyone")
    # The memory backend drops a channel's history when its last subscriber leaves: join while one is there.
    latecomer = client.connect("/channels/general")
    expect(latecomer.receive(), "text", "hello, everyone")  # history, sent once the latecomer has subscribed
    publisher.send_text("welcome, latecomer")
    expect(publisher.receive(), "text", "published")
    expect(subscriber.receive(), "text", "welcome, latecomer")
    expect(latecomer.receive(), "text", "welcome, latecomer")
    publisher.close()
    latecomer.close()
    subscriber.close()


# --- task groups ------------------------------------------------------------------------------------------------


def task_group_app(seen: Seen) -> Litestar:
    @websocket("/group")
    async def read_in_a_task_group(socket: WebSocket[Any, Any, Any]) -> None:
        """Receive in a child task, as handlers that also push from another task do; the client's close ends it."""
        await socket.accept()

        async def echo_forever() -> None:
            while True:
                text = await socket.receive_text()
                seen.append(("received", text))
                await socket.send_text(text)

        async with anyio.create_task_group() as group:
            group.start_soon(echo_forever)

    return Litestar(route_handlers=[read_in_a_task_group])


def task_group_script(client: Client) -> None:
    connection = client.connect("/group")
    connection.send_text("ping")
    expect(connection.receive(), "text", "ping")
    connection.close()


def task_group_error_app(seen: Seen) -> Litestar:
    @websocket("/group-error")
    async def fail_in_a_task_group(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()

        async def fail() -> None:
            room = await socket.receive_text()
            seen.append(("received", room))
            raise LookupError(f"no room called {room}")

        async with anyio.create_task_group() as group:
            group.start_soon(fail)

    return Litestar(route_handlers=[fail_in_a_task_group], debug=True)


def task_group_error_script(client: Client) -> None:
    connection = client.connect("/group-error")
    connection.send_text("atlantis")
    expect(connection.receive(), "close", 4500)


# --- a WebSocket class of the app's own -------------------------------------------------------------------------


class ShoutingWebSocket(WebSocket[Any, Any, Any]):
    """The app's own connection class, installed with ``Litestar(websocket_class=...)``."""

    async def receive_text(self) -> str:
        return (await super().receive_text()).strip()

    async def shout(self, text: str) -> None:
        await self.send_text(f"{text.upper()}!")


def custom_class_app(seen: Seen) -> Litestar:
    @websocket("/shout")
    async def shout(socket: ShoutingWebSocket) -> None:
        seen.append(("connection class", type(socket).__name__))
        await socket.accept()
        text = await socket.receive_text()
        seen.append(("received", text))
        await socket.shout(text)
        await wait_for_disconnect(socket, seen)

    return Litestar(route_handlers=[shout], websocket_class=ShoutingWebSocket)


def custom_class_script(client: Client) -> None:
    connection = client.connect("/shout")
    connection.send_text("  quiet please  ")
    expect(connection.receive(), "text", "QUIET PLEASE!")
    connection.close()


# --- exceptions and closes --------------------------------------------------------------------------------------


def value_error_app(seen: Seen) -> Litestar:
    @websocket("/boom")
    async def boom(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        text = await socket.receive_text()
        seen.append(("received", text))
        logger.warning("about to fail on %r", text)
        raise ValueError(f"cannot handle {text!r}")

    return Litestar(route_handlers=[boom], debug=True)  # debug: Litestar logs the exception, which is compared


def value_error_script(client: Client) -> None:
    connection = client.connect("/boom")
    connection.send_text("anything")
    expect(connection.receive(), "close", 4500, "Internal Server Error")


def websocket_exception_app(seen: Seen) -> Litestar:
    @websocket("/full")
    async def full(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        seen.append(("received", await socket.receive_text()))
        raise WebSocketException(detail="room is full", code=4409)

    return Litestar(route_handlers=[full], debug=True)


def websocket_exception_script(client: Client) -> None:
    connection = client.connect("/full")
    connection.send_text("let me in")
    expect(connection.receive(), "close", 4409, "room is full")


def server_close_app(seen: Seen) -> Litestar:
    @websocket("/goodbye")
    async def goodbye(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        seen.append(("received", await socket.receive_text()))
        await socket.close(code=4001, reason="see you later")
        seen.append(("closed", socket.connection_state))

    return Litestar(route_handlers=[goodbye])


def server_close_script(client: Client) -> None:
    connection = client.connect("/goodbye")
    connection.send_text("bye")
    expect(connection.receive(), "close", 4001, "see you later")


def not_found_app(seen: Seen) -> Litestar:
    rooms = {"lobby": ["welcome"]}

    @websocket("/history/{room:str}")
    async def history(socket: WebSocket[Any, Any, Any], room: FromPath[str]) -> None:
        seen.append(("room", room))
        if room not in rooms:
            raise NotFoundException(f"no room called {room}")  # before accept: the handshake is refused
        await socket.accept()
        index = await socket.receive_text()
        seen.append(("received", index))
        try:
            await socket.send_text(rooms[room][int(index)])
        except IndexError:
            raise NotFoundException(f"no message {index} in {room}") from None  # after accept: a close
        await wait_for_disconnect(socket, seen)

    return Litestar(route_handlers=[history], debug=True)


def not_found_script(client: Client) -> None:
    expect_refused(client, "/history/atlantis")
    connection = client.connect("/history/lobby")
    connection.send_text("0")
    expect(connection.receive(), "text", "welcome")
    connection.close()
    connection = client.connect("/history/lobby")
    connection.send_text("7")
    expect(connection.receive(), "close", 4500, "no message 7 in lobby")


def missing_route_app(seen: Seen) -> Litestar:
    @websocket("/here")
    async def here(socket: WebSocket[Any, Any, Any]) -> None:
        seen.append(("unexpected",))
        await socket.accept()
        await socket.close()

    return Litestar(route_handlers=[here], debug=True)


def missing_route_script(client: Client) -> None:
    expect_refused(client, "/nowhere")
    expect_refused(client, "/here/and/further?x=1")


# --- payloads ---------------------------------------------------------------------------------------------------


def echo_app(seen: Seen) -> Litestar:
    @websocket("/echo")
    async def echo(socket: WebSocket[Any, Any, Any]) -> None:
        """Echo every message with its own type, byte for byte, until the client leaves."""
        await socket.accept()
        while True:
            message: dict[str, Any] = dict(await socket.receive())
            seen.append(("received", message))
            if message["type"] == "websocket.disconnect":
                return
            text: str | None = message.get("text")
            if text is not None:
                await socket.send_text(text)
            else:
                await socket.send_bytes(message.get("bytes") or b"")

    return Litestar(route_handlers=[echo])


PAYLOADS: tuple[str | bytes, ...] = (
    "plain ascii",
    "",
    b"",
    b"\x00\x01\x7f\x80\xfe\xff",
    "naïve café — Grüße, 日本語, emoji 🚀",
    "日本語のテキスト".encode(),
    "x" * ONE_MB,
    "é" * (ONE_MB // 2),  # one megabyte of two-byte characters
    (bytes(range(256)) * (ONE_MB // 256 + 1))[:ONE_MB],
)


def echo_script(client: Client) -> None:
    connection = client.connect("/echo")
    for payload in PAYLOADS:
        if isinstance(payload, str):
            connection.send_text(payload)
            expect(connection.receive(), "text", payload)
        else:
            connection.send_bytes(payload)
            expect(connection.receive(), "bytes", payload)
    connection.close()


# --- what the handler sees of its connection --------------------------------------------------------------------


SCOPE_KEYS = (
    "type", "asgi", "http_version", "scheme", "path", "raw_path", "root_path", "query_string", "headers",
    "subprotocols", "client", "server", "extensions", "path_params", "path_template",
)  # fmt: skip
"""The parts of the scope a handler may read, compared by value; the rest (the app, the handler) by key."""


def connection_app(seen: Seen) -> Litestar:
    @websocket("/details/{room:str}")
    async def details(socket: WebSocket[Any, Any, Any], room: FromPath[str]) -> None:
        scope: dict[str, Any] = dict(socket.scope)
        seen.append(
            {
                "scope keys": sorted(scope),
                "scope": {key: scope.get(key) for key in SCOPE_KEYS},
                "url": str(socket.url),
                "query params": sorted(socket.query_params.multi_items()),
                "cookies": socket.cookies,
                "room": room,
            }
        )
        await socket.accept(subprotocols="chat.v2", headers={"x-room": room})
        seen.append(("received", await socket.receive_text()))
        await socket.send_text(f"in {room}")
        await wait_for_disconnect(socket, seen)

    return Litestar(route_handlers=[details])


def connection_script(client: Client) -> None:
    connection = client.connect(
        "/details/lobby?token=s3cret&user=ann&user=bob&api_key=k",
        subprotocols=["chat.v2", "chat.v1"],
        headers={"authorization": "Bearer abc", "cookie": "sid=s3cret; theme=dark", "x-api-key": "k"},
    )
    connection.send_text("hi")
    expect(connection.receive(), "text", "in lobby")
    connection.close(4000, "done for today")


def connection_state_app(seen: Seen) -> Litestar:
    def remember_member(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        connection.state.member = connection.query_params.get("member", "guest")

    @websocket("/whoami", guards=[remember_member])
    async def whoami(socket: WebSocket[Any, Any, Any]) -> None:
        """Litestar's connection state (``scope["state"]``): a guard writes to it, the handler reads all of it."""
        state = socket.state.dict()
        seen.append(("connection state", sorted(state), len(socket.state)))
        await socket.accept()
        await socket.send_json(state)
        await wait_for_disconnect(socket, seen)

    return Litestar(route_handlers=[whoami])


def connection_state_script(client: Client) -> None:
    connection = client.connect("/whoami?member=ann")
    expect(connection.receive(), "text", '{"member":"ann"}')
    connection.close()


CATALOGUE: tuple[Case, ...] = (
    Case("state-and-immutable-state", state_app, state_script),
    Case("dependencies", dependencies_app, dependencies_script),
    Case("guard-allows", guarded_app, guard_allows_script),
    Case("guard-refuses", guarded_app, guard_refuses_script),
    Case("listener-text", text_listener_app, text_listener_script),
    Case("listener-json", json_listener_app, json_listener_script),
    Case("listener-class", listener_class_app, listener_class_script),
    Case("stream", stream_app, stream_script),
    Case("channels", channels_app, channels_script),
    Case("task-group-client-close", task_group_app, task_group_script),
    Case("task-group-error", task_group_error_app, task_group_error_script),
    Case("custom-websocket-class", custom_class_app, custom_class_script),
    Case("value-error", value_error_app, value_error_script),
    Case("websocket-exception", websocket_exception_app, websocket_exception_script),
    Case("server-close", server_close_app, server_close_script),
    Case("not-found-exception", not_found_app, not_found_script),
    Case("missing-route", missing_route_app, missing_route_script),
    Case("payloads", echo_app, echo_script),
    Case("connection-details", connection_app, connection_script),
    Case("connection-state", connection_state_app, connection_state_script),
)
"""Every app shape the equivalence test runs; names are the test ids."""
