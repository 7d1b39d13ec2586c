"""The examples work as their READMEs say: served by uvicorn, driven by a real ``websockets`` client."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.export.collector import free_ports, start_rotel
from tests.export.receiver import OtlpGrpcReceiver
from tests.export.subprocess_app import clean_env, stop_process
from tests.servers import run_server, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import ModuleType

    from opentelemetry.sdk.trace import ReadableSpan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHAT_SCRIPT = EXAMPLES / "chat" / "app.py"
QUICKSTART_SCRIPT = EXAMPLES / "quickstart.py"
TIMEOUT = 10.0
QUICK_CLIENTS = 20
_ENV_PREFIXES_TO_DROP = ("OTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")


def load_example(path: Path) -> ModuleType:
    """Import an example file as a module (``examples`` is not a package)."""
    name = "ws_otel_example_" + "_".join(path.relative_to(EXAMPLES).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Litestar resolves handler annotations through the module's entry there
    spec.loader.exec_module(module)
    return module


def get_text(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.status, response.read().decode("utf-8")


def get_json(url: str) -> dict[str, Any]:
    status, text = get_text(url)
    assert status == 200
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


async def next_json(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert isinstance(message, dict)
    return message


def summary(message: dict[str, Any]) -> tuple[Any, ...]:
    """What a chat message says, without its time."""
    return (message["type"], message.get("room"), message.get("user"), message.get("text"))


@dataclass
class ExampleProcess:
    """An example running in a subprocess, its stdout and stderr together in one file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> str:
        """Stop the example as Ctrl+C would; everything it printed."""
        stop_process(self.process, TIMEOUT)
        return self.output()


@contextlib.contextmanager
def run_example(command: Sequence[str], env: dict[str, str], workdir: Path, port: int) -> Iterator[ExampleProcess]:
    """Run ``command`` (an example listening on ``port``); yields once it accepts connections, always stops it."""
    log_path = workdir / "example-output.txt"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},  # its lines in the order it printed them
            cwd=workdir,
        )
    example = ExampleProcess(process, port, log_path)

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the example exited:\n{example.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False

    try:
        wait_for(listening, timeout=20.0, what="the example to listen")
        yield example
    finally:
        stop_process(process, TIMEOUT)


async def quick_clients(url: Callable[[int], str], message: Callable[[int], str], count: int = QUICK_CLIENTS) -> None:
    """``count`` clients at once, each connecting, sending one message and closing (1000) without reading.

    ``max_queue=None``: a client that reads nothing still takes in what the server sends, so it sees the
    server's close frame at once instead of waiting ``close_timeout`` behind a full queue.
    """

    async def client(number: int) -> None:
        async with connect(url(number), open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_queue=None) as ws:
            await ws.send(message(number))

    await asyncio.wait_for(asyncio.gather(*(client(number) for number in range(count))), TIMEOUT * 3)


def assert_quiet(output: str) -> None:
    """No traceback and no error line: what a user would take for a bug."""
    lines = output.splitlines()
    loud = [n for n, line in enumerate(lines) if line.startswith("ERROR") or "Traceback (most recent call" in line]
    assert not loud, "the example logged errors; the first:\n" + "\n".join(lines[loud[0] : loud[0] + 40])


def all_closed(example: ExampleProcess, count: int) -> dict[str, Any]:
    """The panel's statistics once ``count`` sessions have been accepted and have ended with a close code.

    A session stops counting as open when its close is seen, and its close code is counted a moment
    later, when its handler has returned: wait for both.
    """
    seen: list[dict[str, Any]] = []

    def done() -> bool:
        seen.append(stats := get_json(example.http_url("/_ws_otel/api/stats")))
        return stats["connections_total"] == count and sum(stats["close_codes"].values()) == count

    try:
        wait_for(done, timeout=TIMEOUT, what=f"{count} sessions to close")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the panel's statistics: {seen[-1]}") from None
    return seen[-1]


def finished(exporter: InMemorySpanExporter, count: int) -> tuple[ReadableSpan, ...]:
    return wait_for(
        lambda: spans if len(spans := exporter.get_finished_spans()) >= count else None,
        timeout=TIMEOUT,
        what=f"{count} finished spans",
    )


# --- examples/chat ----------------------------------------------------------------------------------------


def test_chat_rooms_broadcast_to_their_members_only(
    provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = provider_and_exporter
    chat = load_example(CHAT_SCRIPT)
    with run_server(chat.create_app(tracer_provider=provider)) as server:

        async def scenario() -> None:
            async with (
                connect(server.url("/chat/kitchen?user=alice"), open_timeout=TIMEOUT) as alice,
                connect(server.url("/chat/garden?user=carol"), open_timeout=TIMEOUT) as carol,
            ):
                assert summary(await next_json(alice)) == ("join", "kitchen", "alice", None)
                assert summary(await next_json(carol)) == ("join", "garden", "carol", None)
                async with connect(server.url("/chat/kitchen?user=bob"), open_timeout=TIMEOUT) as bob:
                    assert summary(await next_json(bob)) == ("join", "kitchen", "bob", None)
                    assert summary(await next_json(alice)) == ("join", "kitchen", "bob", None)

                    await bob.send(json.dumps({"type": "message", "text": "hi alice ✓"}))
                    said = ("message", "kitchen", "bob", "hi alice ✓")
                    assert summary(await next_json(alice)) == said
                    assert summary(await next_json(bob)) == said

                    await carol.send(json.dumps({"type": "message", "text": "anyone here?"}))
                    assert summary(await next_json(carol)) == ("message", "garden", "carol", "anyone here?")

                    # Only the sender hears about a message it cannot use.
                    await alice.send("not json")
                    assert (await next_json(alice))["type"] == "error"
                    await alice.send(json.dumps({"type": "message", "text": "bye"}))
                    # Had carol's message leaked into the kitchen, it would come first: it was published first.
                    assert summary(await next_json(alice)) == ("message", "kitchen", "alice", "bye")
                    assert summary(await next_json(bob)) == ("message", "kitchen", "alice", "bye")
                assert summary(await next_json(alice)) == ("leave", "kitchen", "bob", None)
                await carol.send(json.dumps({"type": "message", "text": "still alone"}))
                assert summary(await next_json(carol)) == ("message", "garden", "carol", "still alone")

            with pytest.raises(InvalidStatus) as refused:
                async with connect(server.url("/chat/no%20spaces"), open_timeout=TIMEOUT):
                    pass
            assert refused.value.response.status_code == 403

        asyncio.run(asyncio.wait_for(scenario(), TIMEOUT * 3))
        spans = finished(exporter, 4)

        status, page = get_text(server.http_url("/"))
        assert status == 200
        assert "new WebSocket(" in page
        status, _ = get_text(server.http_url("/_ws_otel/"))  # debug mode: the panel is served
        assert status == 200
        _, listing = get_text(server.http_url("/_ws_otel/api/sessions"))
        assert {s["route"] for s in json.loads(listing)["sessions"]} == {"/chat/{room}"}

    assert {span.name for span in spans} == {"WS /chat/{room}"}
    [bob_span] = [s for s in spans if (s.attributes or {}).get("url.query") == "user=bob"]
    payloads = [e.attributes["websocket.message.payload"] for e in bob_span.events if e.name == "websocket.receive"]
    assert payloads == [json.dumps({"type": "message", "text": "hi alice ✓"})]  # debug mode: previews are on
    [refused_span] = [s for s in spans if (s.attributes or {}).get("http.response.status_code") == 403]
    assert refused_span.attributes is not None
    assert refused_span.attributes["websocket.messages.sent"] == 0


@contextlib.contextmanager
def chat_script(env: dict[str, str], workdir: Path) -> Iterator[int]:
    """``python3 examples/chat/app.py`` as the README runs it; yields its port once it accepts connections."""
    port = free_ports(1)[0]
    with run_example([sys.executable, str(CHAT_SCRIPT)], {**env, "PORT": str(port)}, workdir, port):
        yield port


def test_chat_script_exports_when_an_otlp_endpoint_is_set(tmp_path: Path) -> None:
    with OtlpGrpcReceiver() as receiver:
        collector = start_rotel(receiver.endpoint, tmp_path, receiver=receiver)
        try:
            env = clean_env(
                _ENV_PREFIXES_TO_DROP,
                OTEL_SERVICE_NAME="chat",
                OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
                OTEL_BSP_SCHEDULE_DELAY="100",
            )
            with chat_script(env, tmp_path) as port:
                assert get_text(f"http://127.0.0.1:{port}/")[0] == 200

                async def session() -> None:
                    async with connect(f"ws://127.0.0.1:{port}/chat/lobby?user=dana", open_timeout=TIMEOUT) as ws:
                        assert (await next_json(ws))["type"] == "join"
                        await ws.send(json.dumps({"type": "message", "text": "hello jaeger"}))
                        assert (await next_json(ws))["text"] == "hello jaeger"

                asyncio.run(session())
                [span] = receiver.wait_for_spans(lambda s: s["name"] == "WS /chat/{room}", timeout=30.0)
        finally:
            collector.stop()
    assert span["resource_attributes"]["service.name"] == "chat"
    assert span["attributes"]["url.path"] == "/chat/lobby"
    assert span["attributes"]["url.query"] == "user=dana"
    assert [e["name"] for e in span["events"]] == [
        "websocket.accept",
        "websocket.send",  # the join notice
        "websocket.receive",
        "websocket.send",
        "websocket.close",
    ]


@pytest.mark.parametrize("ws", ["websockets-sansio", "websockets"])
def test_chat_is_quiet_when_clients_leave_at_once(ws: str, tmp_path: Path) -> None:
    """Broadcasts and replies that reach a client who has just closed are no error: nothing is logged.

    Both uvicorn implementations: ``websockets-sansio`` (what ``--ws auto`` picks) and the legacy
    ``websockets`` one, on which every such send used to log a traceback.
    """
    port = free_ports(1)[0]
    command = [sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(CHAT_SCRIPT.parent), "app:create_app"]
    command += ["--port", str(port), "--ws", ws]
    bursts = 3
    with run_example(command, clean_env(_ENV_PREFIXES_TO_DROP), tmp_path, port) as chat:
        for _ in range(bursts):
            # Each join, message and leave is broadcast to the whole room, most of which is closing by then;
            # every other client sends something that is not JSON, which the app answers to it alone.
            asyncio.run(
                quick_clients(
                    lambda n: chat.url(f"/chat/lobby?user=u{n}"),
                    lambda n: json.dumps({"type": "message", "text": f"hi {n}"}) if n % 2 else "not json",
                )
            )
        stats = all_closed(chat, bursts * QUICK_CLIENTS)
        assert get_text(chat.http_url("/favicon.ico"))[0] == 204
        output = chat.stop()
    assert_quiet(output)
    assert stats["messages_received"] == bursts * QUICK_CLIENTS
    assert stats["close_codes"] == {"1000": bursts * QUICK_CLIENTS}  # every client closed with 1000
    assert stats["errors"] == 0


# --- examples/quickstart.py ----------------------------------------------------------------------------------


def test_quickstart_prints_the_panel_address_and_serves_it(tmp_path: Path) -> None:
    """``python3 examples/quickstart.py`` as the README runs it: its output ends with the panel's address."""
    port = free_ports(1)[0]
    env = clean_env(_ENV_PREFIXES_TO_DROP, PORT=str(port))
    with run_example([sys.executable, str(QUICKSTART_SCRIPT)], env, tmp_path, port) as quickstart:
        panel = quickstart.http_url("/_ws_otel/")
        printed = quickstart.output().split("INFO:", 1)[0].strip()  # what it prints before uvicorn's own lines
        assert printed.endswith(panel), quickstart.output()
        status, panel_page = get_text(panel)
        assert status == 200
        assert "<title>" in panel_page
        status, page = get_text(quickstart.http_url("/"))
        assert status == 200
        assert 'href="/_ws_otel/"' in page
        assert get_text(quickstart.http_url("/favicon.ico"))[0] == 204  # a browser asks for it

        async def scenario() -> None:
            async with connect(quickstart.url("/chat/lobby"), open_timeout=TIMEOUT) as ws:
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "[lobby] echo: hello"
            # Clients that close right after sending have gone before their echo is sent.
            await quick_clients(lambda n: quickstart.url(f"/chat/room{n % 3}"), lambda n: f"hi {n}")

        asyncio.run(scenario())
        stats = all_closed(quickstart, 1 + QUICK_CLIENTS)
        output = quickstart.stop()
    assert_quiet(output)
    assert stats["close_codes"] == {"1000": 1 + QUICK_CLIENTS}
    assert stats["errors"] == 0


# --- examples/plugin_app.py ----------------------------------------------------------------------------------


def test_plugin_example_records_a_span(provider_and_exporter: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = provider_and_exporter
    example = load_example(EXAMPLES / "plugin_app.py")
    with run_server(example.create_app(tracer_provider=provider)) as server:

        async def session() -> None:
            async with connect(server.url("/echo"), open_timeout=TIMEOUT) as ws:
                await ws.send("ping")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ping"

        asyncio.run(session())
        [span] = finished(exporter, 1)
        _, listing = get_text(server.http_url("/sessions"))
    assert span.name == "WS /echo"
    assert [e.name for e in span.events] == [
        "websocket.accept",
        "websocket.receive",
        "websocket.send",
        "websocket.close",
    ]
    assert span.events[1].attributes is not None
    assert span.events[1].attributes["websocket.message.payload"] == "ping"
    [stored] = json.loads(listing)
    assert stored["route"] == "/echo"
    assert stored["state"] == "closed"
