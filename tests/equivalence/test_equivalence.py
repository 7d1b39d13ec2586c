"""An instrumented app cannot tell it is instrumented: every catalogue app, plain and instrumented, over two transports.

Each entry of ``tests.equivalence.apps.CATALOGUE`` runs twice on fresh apps, once plain and once
instrumented with payload capture on, through Litestar's ``TestClient`` and through uvicorn with a
real ``websockets`` client. Everything either side can observe is compared for equality: the
client's transcript (handshakes, messages with exact payloads, closes with codes and reasons, in
order), what the handlers received, ``app.state`` afterwards, the app's log records, and the number
of connections that reached the app. The instrumented run must also end exactly one session span per
connection.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.enums import ScopeType
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient, WebSocketTestSession
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

import litestar_ws_otel
from litestar_ws_otel import WebSocketTelemetryConfig, instrument_app
from tests.equivalence.apps import APP_LOGGER, CATALOGUE, Case, Client, Connection, Event, HandshakeRefused
from tests.servers import run_server, wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
"""Upper bound of every wait (a message, a handshake, the app finishing a connection); conditions end waits."""

MAX_MESSAGE = 8 * 2**20
"""The ``websockets`` client's limit, above the catalogue's 1 MB messages (its default is exactly 1 MiB)."""

LARGE = 4096
"""Payloads longer than this are compared by length and SHA-256, so a failure's diff stays readable."""

VARYING_HEADERS = frozenset({"date", "sec-websocket-key", "sec-websocket-accept"})
"""Header values that differ on every connection whatever the app does.

``date`` is the time of the response; ``sec-websocket-key`` is the client's random nonce and
``sec-websocket-accept`` is derived from it (RFC 6455, section 4).
"""

TRANSPORTS = ("testclient", "uvicorn")


# --- what one run observed ----------------------------------------------------------------------------------------


@dataclass
class Observation:
    """Everything the client and the app observed in one run; plain and instrumented runs must be equal."""

    client: list[Event]
    """The client's transcript: ``(connection number, what happened, details...)`` in order."""
    handlers: list[Any]
    """What the app's handlers, guards, dependencies and hooks received (the catalogue's ``seen``)."""
    state: dict[str, Any]
    """``app.state`` once every connection has ended."""
    logs: list[tuple[Any, ...]]
    """``(logger, level, message, exception)`` of the app's records, in order (see ``_exception``)."""
    connections: int
    """WebSocket connections that reached the app."""
    script_error: str | None
    """What made the client script stop early, if anything (a failed expectation, a timeout)."""


class _Tracked:
    """The outermost ASGI app of both runs: counts WebSocket connections the app started and finished.

    Waiting on ``finished`` tells when a handler is really done (its last ``seen`` entry written,
    its span ended), which the client cannot see: a close frame arrives before the handler returns.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.started = 0
        self.finished = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.WEBSOCKET:
            await self.app(scope, receive, send)
            return
        with self._lock:
            self.started += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.finished += 1


class _Transcript:
    """The client's record, shared by the connections of one run, and the barrier that keeps it ordered."""

    def __init__(self, tracked: _Tracked) -> None:
        self.events: list[Event] = []
        self.opened = 0
        self.ended = 0
        self._tracked = tracked

    def record(self, number: int, *event: Any) -> None:
        self.events.append((number, *event))

    def connection_ended(self) -> None:
        """Return once the app has finished as many connections as the client has seen end.

        Scripts read a server's close before their next step, so connections end in the script's
        order and afterwards nothing the app does for them can interleave with the next step:
        ``seen`` and the logs follow the script, not the scheduler.
        """
        self.ended += 1
        wait_for(
            lambda: self._tracked.finished >= self.ended,
            timeout=TIMEOUT,
            what=f"the app to finish connection {self.ended}",
        )


# --- transport: Litestar's TestClient -----------------------------------------------------------------------------


class _TestClientConnection:
    def __init__(self, session: WebSocketTestSession, number: int, transcript: _Transcript) -> None:
        self._session = session
        self._number = number
        self._transcript = transcript
        self.open = True

    def send_text(self, data: str) -> None:
        self._session.send_text(data)

    def send_bytes(self, data: bytes) -> None:
        self._session.send_bytes(data)

    def receive(self) -> Event:
        # The raw ASGI message the app sent, not ``session.receive()``'s view: every key is compared.
        try:
            message = self._session.send_queue.get(timeout=TIMEOUT)
        except queue.Empty:
            raise TimeoutError(f"connection {self._number}: nothing received within {TIMEOUT}s") from None
        if isinstance(message, BaseException):
            raise message
        self._transcript.record(self._number, "sent by app", dict(message))
        if message["type"] == "websocket.close":
            self._end()
            return ("close", message.get("code", 1000), message.get("reason") or "")
        text = message.get("text")
        return ("text", text) if text is not None else ("bytes", message.get("bytes"))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.open:
            return
        # ``WebSocketTestSession.close`` takes no reason; the app should see the one the client gave.
        disconnect: Any = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._session.receive_queue.put(disconnect)
        self._transcript.record(self._number, "client closed", code, reason)
        self._end()

    def _end(self) -> None:
        self.open = False
        self._transcript.connection_ended()


class _TestClientClient:
    def __init__(self, http: TestClient[Any], transcript: _Transcript, stack: contextlib.ExitStack) -> None:
        self._http = http
        self._transcript = transcript
        self._stack = stack
        self.connections: list[_TestClientConnection] = []

    def connect(
        self, path: str, *, subprotocols: Sequence[str] = (), headers: Mapping[str, str] | None = None
    ) -> Connection:
        number = self._transcript.opened
        self._transcript.opened += 1
        session = self._http.websocket_connect(path, subprotocols=list(subprotocols), headers=dict(headers or {}))
        try:
            self._stack.enter_context(session)
        except WebSocketDisconnect as exc:
            self._transcript.record(number, "refused", exc.code, exc.detail)
            self._transcript.connection_ended()
            raise HandshakeRefused(path) from exc
        self._transcript.record(number, "accepted", session.accepted_subprotocol, session.extra_headers)
        connection = _TestClientConnection(session, number, self._transcript)
        self.connections.append(connection)
        return connection


@contextlib.contextmanager
def _through_testclient(
    app: _Tracked, transcript: _Transcript, capture: _Capture
) -> Iterator[tuple[_TestClientClient, int | None]]:
    """In-process, as most Litestar test suites talk to their apps; no port, nothing of its own to log."""
    with TestClient(app, timeout=TIMEOUT) as http, contextlib.ExitStack() as sessions:
        client = _TestClientClient(http, transcript, sessions)
        yield client, None
        for connection in client.connections:
            connection.close()


# --- transport: uvicorn and a websockets client -------------------------------------------------------------------


class _SocketConnection:
    def __init__(self, socket: ClientConnection, number: int, transcript: _Transcript) -> None:
        self._socket = socket
        self._number = number
        self._transcript = transcript
        self.open = True

    def send_text(self, data: str) -> None:
        self._socket.send(data)

    def send_bytes(self, data: bytes) -> None:
        self._socket.send(data)

    def receive(self) -> Event:
        try:
            data = self._socket.recv(timeout=TIMEOUT)
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, None)
            self._transcript.record(self._number, "server closed", code, reason)
            self._end()
            return ("close", code, reason)
        event: Event = ("text", data) if isinstance(data, str) else ("bytes", data)
        self._transcript.record(self._number, *event)
        return event

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.open:
            return
        self._socket.close(code, reason)
        # After the closing handshake: the close frame the server answered with.
        self._transcript.record(
            self._number, "client closed", code, reason, self._socket.close_code, self._socket.close_reason
        )
        self._end()

    def _end(self) -> None:
        self.open = False
        self._socket.close()  # no-op once closed; releases the socket after a server close
        self._transcript.connection_ended()


class _SocketClient:
    def __init__(self, url: Callable[[str], str], transcript: _Transcript, stack: contextlib.ExitStack) -> None:
        self._url = url
        self._transcript = transcript
        self._stack = stack
        self.connections: list[_SocketConnection] = []

    def connect(
        self, path: str, *, subprotocols: Sequence[str] = (), headers: Mapping[str, str] | None = None
    ) -> Connection:
        number = self._transcript.opened
        self._transcript.opened += 1
        try:
            socket = ws_connect(
                self._url(path),
                subprotocols=[Subprotocol(name) for name in subprotocols] or None,
                additional_headers=dict(headers or {}),
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
                ping_interval=None,  # no keepalive frames: the exchange is exactly what the script does
                max_size=MAX_MESSAGE,
            )
        except InvalidStatus as exc:
            response = exc.response
            self._transcript.record(
                number, "refused", response.status_code, list(response.headers.raw_items()), bytes(response.body)
            )
            self._transcript.connection_ended()
            raise HandshakeRefused(path) from exc
        self._stack.enter_context(socket)
        assert socket.response is not None
        self._transcript.record(number, "accepted", socket.subprotocol, list(socket.response.headers.raw_items()))
        connection = _SocketConnection(socket, number, self._transcript)
        self.connections.append(connection)
        return connection


@contextlib.contextmanager
def _through_uvicorn(
    app: _Tracked, transcript: _Transcript, capture: _Capture
) -> Iterator[tuple[_SocketClient, int | None]]:
    """Over a socket: real close frames and handshake refusals (HTTP 403), which ``TestClient`` only simulates."""
    # uvicorn configures its loggers when the server is built, dropping handlers added earlier, so
    # its own records (an exception that escaped the app, say) are captured once it has started.
    with run_server(app) as server, contextlib.ExitStack() as sockets, _capturing(capture, ["uvicorn.error"]):
        client = _SocketClient(server.url, transcript, sockets)
        yield client, server.port
        for connection in client.connections:
            connection.close()


# --- the app's log records ----------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    """Keeps the app's own records; emitted on whichever thread runs the app, so appends only."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[Any, ...]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _is_the_apps(record):
            exc = record.exc_info[1] if record.exc_info else None
            self.records.append((record.name, record.levelname, record.getMessage(), _exception(exc)))


_INSTRUMENTATION_FILES = str(Path(litestar_ws_otel.__file__).parent)


def _exception(exc: BaseException | None) -> tuple[Any, ...] | None:
    """A logged exception as the app sees it: type, message, where it was raised, its causes and sub-exceptions.

    Frames in the instrumentation's own files are left out: a middleware around the app is on the
    stack of anything raised through ``receive`` or ``send``. Every other frame is compared.
    """
    if exc is None:
        return None
    frames = tuple(
        (Path(frame.filename).name, frame.name, frame.lineno)
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(_INSTRUMENTATION_FILES)
    )
    group = tuple(_exception(inner) for inner in getattr(exc, "exceptions", ()))
    return (type(exc).__name__, str(exc), frames, _exception(exc.__cause__), group)


def _is_the_apps(record: logging.LogRecord) -> bool:
    """The app's own logger and Litestar's at every level, anything else that reaches the root from WARNING up.

    The instrumentation's own reports (``litestar_ws_otel``) are its business, not the app's; the
    ``websockets`` client's records are the test client's. Below WARNING, other libraries' records
    (httpx logs every ``TestClient`` request at INFO) describe the harness rather than the app.
    """
    if record.name.startswith(("litestar_ws_otel", "websockets")):
        return False
    return record.name.startswith((APP_LOGGER, "litestar")) or record.levelno >= logging.WARNING


@contextlib.contextmanager
def _capturing(capture: _Capture, names: Sequence[str]) -> Iterator[None]:
    """Send records reaching the loggers ``names`` (``""`` is the root) to ``capture`` until the block ends."""
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(capture)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(capture)


# --- one run, and the comparison ----------------------------------------------------------------------------------

Transport = Callable[[_Tracked, _Transcript, _Capture], contextlib.AbstractContextManager[tuple[Client, int | None]]]
"""Serves the app and yields a client for it and the server's port (``None`` in process)."""

_TRANSPORT: dict[str, Transport] = {"testclient": _through_testclient, "uvicorn": _through_uvicorn}


def observe(case: Case, transport: str, provider: TracerProvider | None = None) -> Observation:
    """Build a fresh app, instrument it when ``provider`` is given, run the case's script, return what was seen."""
    seen: list[Any] = []
    app = case.build(seen)
    if provider is not None:
        instrument_app(app, WebSocketTelemetryConfig(capture_payloads=True), tracer_provider=provider)
    tracked = _Tracked(app)
    transcript = _Transcript(tracked)
    script_error: str | None = None
    capture = _Capture()
    # Litestar configures logging when the app is built, which drops handlers added earlier: capture after.
    # Its "litestar" logger does not propagate to the root, so it is captured on its own.
    with _capturing(capture, ["", "litestar"]):
        with _TRANSPORT[transport](tracked, transcript, capture) as (client, port):
            try:
                case.script(client)
            except Exception as exc:
                script_error = f"{type(exc).__name__}: {exc}"
        wait_for(lambda: tracked.finished == tracked.started, timeout=TIMEOUT, what="the app to end every connection")
    assert tracked.started == transcript.opened, "every connection the client opened reaches the app"
    return Observation(
        client=_normalise(transcript.events, port),
        handlers=_normalise(seen, port),
        state=copy.deepcopy(app.state.dict()),
        logs=_normalise(capture.records, port),
        connections=tracked.started,
        script_error=script_error,
    )


def _normalise(value: Any, port: int | None) -> Any:
    """``value`` with what legitimately varies between runs replaced, and large payloads digested.

    - The server's port: uvicorn listens on port 0, a new free port each run, which shows in the
      ``host`` header and in URLs.
    - The client's port, in ``scope["client"]``: an ephemeral port chosen by the OS per connection.
    - ``VARYING_HEADERS``: a timestamp and a per-connection nonce.
    Payloads over ``LARGE`` become ``(type, length, sha256)``: still an exact comparison, and a readable diff.
    """
    if isinstance(value, (str, bytes)):
        if len(value) > LARGE:
            data = value.encode() if isinstance(value, str) else value
            return (type(value).__name__, len(value), hashlib.sha256(data).hexdigest())
        if port is not None:
            if isinstance(value, str):
                return value.replace(f"127.0.0.1:{port}", "127.0.0.1:<port>")
            return value.replace(f"127.0.0.1:{port}".encode(), b"127.0.0.1:<port>")
        return value
    if isinstance(value, dict):
        normalised = {key: _normalise(item, port) for key, item in value.items()}
        for key in ("client", "server"):
            address = normalised.get(key)
            if port is not None and isinstance(address, (list, tuple)) and len(address) == 2:
                normalised[key] = (address[0], "<port>")
        return normalised
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and _header_name(value[0]) in VARYING_HEADERS:
            return (value[0], "<varies>")
        return type(value)(_normalise(item, port) for item in value)
    return value


def _header_name(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1").lower()
    return value.lower() if isinstance(value, str) else None


def session_spans(exporter: InMemorySpanExporter) -> int:
    """Session spans that have ended: the instrumentation names them ``WS <route>``."""
    return sum(1 for span in exporter.get_finished_spans() if span.name.startswith("WS"))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CATALOGUE])
def test_an_instrumented_app_behaves_as_the_plain_app(
    case: Case, transport: str, provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The plain run first proves the entry works as written; the instrumented run must then match it exactly."""
    provider, exporter = provider_and_exporter
    plain = observe(case, transport)
    assert plain.script_error is None, f"the catalogue entry does not do what it says: {plain.script_error}"
    instrumented = observe(case, transport, provider)
    assert instrumented == plain
    assert session_spans(exporter) == instrumented.connections, "one session span per connection"
