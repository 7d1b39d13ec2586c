"""Long sessions over OTLP to the real rotel collector: visible while open, and a crash loses little."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import wait_for

from .live_app import INTERVAL_VARIABLE
from .subprocess_app import READY_PREFIX, clean_env, run_app_process

if TYPE_CHECKING:
    from pathlib import Path

    from .collector import RotelCollector
    from .receiver import OtlpGrpcReceiver, SpanDict

pytestmark = pytest.mark.export

APP_MODULE = "tests.export.live_app"
WAIT_TIMEOUT = 30.0
INTERVAL = "0.3"
SESSION_NAME = "WS /stream/{name}"
_DROP = ("OTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")


def live_env(collector: RotelCollector) -> dict[str, str]:
    """Export over gRPC through the collector; batches leave every 100 ms, open sessions every 0.3 s."""
    return clean_env(
        _DROP,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_SERVICE_NAME="ws-otel-live",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **{INTERVAL_VARIABLE: INTERVAL},
    )


def event_ids(spans: list[SpanDict], name: str) -> list[int]:
    return [e["attributes"]["websocket.message.id"] for s in spans for e in s["events"] if e["name"] == name]


async def burst(client: ClientConnection, count: int) -> None:
    """Ask for ``count`` messages and read them all."""
    await client.send(str(count))
    for _ in range(count):
        await asyncio.wait_for(client.recv(), WAIT_TIMEOUT)


def messages_spans(receiver: OtlpGrpcReceiver) -> list[SpanDict]:
    return [s for s in receiver.spans() if s["name"] == f"{SESSION_NAME} messages"]


def wait_until_sent(receiver: OtlpGrpcReceiver, first: int, last: int) -> list[SpanDict]:
    """The ``messages`` spans once every sent message ``first..last`` has arrived in one of them."""

    def arrived() -> list[SpanDict] | None:
        spans = messages_spans(receiver)
        return spans if set(range(first, last + 1)) <= set(event_ids(spans, "websocket.send")) else None

    return wait_for(arrived, timeout=WAIT_TIMEOUT, what=f"sent messages {first}..{last} at the collector")


async def open_stream(port: int, name: str) -> ClientConnection:
    return await connect(f"ws://127.0.0.1:{port}/stream/{name}", open_timeout=WAIT_TIMEOUT)


def test_an_open_session_reaches_the_collector_and_every_message_is_accounted_once(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    bursts = [5, 120, 7]  # 120 overflows the ring of 50 within one interval: drops, counted

    async def scenario(port: int) -> None:
        client = await open_stream(port, "long")
        sent = 0
        for count in bursts:
            await burst(client, count)
            first = sent + 1 if count <= 50 else sent + count  # an overflowing burst: at least its newest
            sent += count
            await asyncio.to_thread(wait_until_sent, otlp_receiver, first, sent)
        assert [s for s in otlp_receiver.spans() if s["name"] == SESSION_NAME] == []  # still open
        await client.close()

    with run_app_process(APP_MODULE, live_env(rotel_collector), tmp_path) as app:
        port = int(app.wait_line(READY_PREFIX))
        asyncio.run(asyncio.wait_for(scenario(port), WAIT_TIMEOUT * 3))
        [session] = otlp_receiver.wait_for_spans(lambda s: s["name"] == SESSION_NAME, timeout=WAIT_TIMEOUT)
    children = [s for s in messages_spans(otlp_receiver) if s["trace_id"] == session["trace_id"]]
    assert len(children) >= len(bursts)
    assert all(child["parent_span_id"] == session["span_id"] for child in children)
    spans = [*children, session]
    received, sent = event_ids(spans, "websocket.receive"), event_ids(spans, "websocket.send")
    dropped = sum(s["attributes"]["websocket.events.dropped"] for s in spans)
    assert len(received) == len(set(received))  # no id twice
    assert len(sent) == len(set(sent))
    # Received 2 shares its interval with the overflowing burst and may be pushed out of the ring.
    assert {1, 3} <= set(received) <= {1, 2, 3}
    assert session["attributes"]["websocket.messages.sent"] == sum(bursts)
    assert session["attributes"]["websocket.messages.received"] == len(bursts)
    assert len(received) + len(sent) + dropped == len(bursts) + sum(bursts)  # every message, once
    assert dropped >= 120 - 50  # one interval's overflow of the ring
    assert max(sent) == sum(bursts)


def test_kill_9_loses_only_the_last_interval(
    rotel_collector: RotelCollector, otlp_receiver: OtlpGrpcReceiver, tmp_path: Path
) -> None:
    """Messages older than an interval and a batch delay are at the collector when the worker dies."""

    async def scenario(port: int) -> ClientConnection:
        client = await open_stream(port, "crash")
        await burst(client, 30)
        await asyncio.to_thread(wait_until_sent, otlp_receiver, 1, 30)  # exported while open, on the timer
        await burst(client, 3)  # the newest messages, likely still in the ring when the process dies
        return client

    with run_app_process(APP_MODULE, live_env(rotel_collector), tmp_path) as app:
        port = int(app.wait_line(READY_PREFIX))
        loop = asyncio.new_event_loop()
        try:
            client = loop.run_until_complete(asyncio.wait_for(scenario(port), WAIT_TIMEOUT * 2))
            app.process.kill()  # SIGKILL: no shutdown hook, no flush, no close
            app.process.wait(timeout=WAIT_TIMEOUT)
            loop.run_until_complete(client.close())
        finally:
            loop.close()
    assert [s for s in otlp_receiver.spans() if s["name"] == SESSION_NAME] == []  # the session span died with it
    spans = messages_spans(otlp_receiver)
    assert set(range(1, 31)) <= set(event_ids(spans, "websocket.send"))
    assert event_ids(spans, "websocket.receive")[:1] == [1]
