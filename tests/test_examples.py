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
    from collections.abc import Iterator
    from types import ModuleType

    from opentelemetry.sdk.trace import ReadableSpan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHAT_SCRIPT = EXAMPLES / "chat" / "app.py"
TIMEOUT = 10.0
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


async def next_json(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert isinstance(message, dict)
    return message


def summary(message: dict[str, Any]) -> tuple[Any, ...]:
    """What a chat message says, without its time."""
    return (message["type"], message.get("room"), message.get("user"), message.get("text"))


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
    log_path = workdir / "chat-output.txt"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, str(CHAT_SCRIPT)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PORT": str(port)},
            cwd=workdir,
        )

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the chat example exited:\n{log_path.read_text(encoding='utf-8')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False

    try:
        wait_for(listening, timeout=20.0, what="the chat example to listen")
        yield port
    finally:
        stop_process(process, TIMEOUT)


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
