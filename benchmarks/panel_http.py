"""The panel API over HTTP at the default limits full: response time and size.

uvicorn serves ``apps.PANEL_APP`` (the app in debug mode, ``instrument_app`` with payload capture
on) in a subprocess, as the loopback benchmarks do. Real WebSocket sessions fill the store: each of
``sessions`` connections echoes ``messages`` texts of ``message_bytes`` bytes, so at the defaults
(50 x 50 echoes of 1,024 B) every ring holds 100 records with 1 KiB previews; ``keep_open`` of them
stay open and the others are closed, so both states are in the answers. Then an ``httpx`` client
on one keep-alive connection (as a browser tab) and the ``websockets`` client time, interleaved:

- ``GET {panel}/api/sessions`` (every session with its messages),
- ``GET {panel}/api/sessions?summary=1``,
- ``GET {panel}/api/sessions/{span_id}`` (one session with a full ring),
- WebSocket ``{panel}/api/live``: from opening the connection to its first frame, the ``snapshot``.

Each is the wall time until the whole answer is in the client, with its size (the JSON body or
frame as decoded; the live socket negotiates permessage-deflate, so fewer bytes cross the wire),
and the server's CPU time over it.

Two servers, filled alike and timed in turn: one bound as ``uvicorn --host --port`` binds (accepted
sockets get ``TCP_NODELAY``; the goal is read from it) and one as ``uvicorn --reload`` or
``--workers N`` bind, without ``TCP_NODELAY``, where a response written in two parts (head, then
body) can wait for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from websockets.asyncio.client import connect

from benchmarks import loopback
from benchmarks.apps import PANEL_APP
from benchmarks.stats import summary

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.client import ClientConnection

    from benchmarks.loopback import ServerProcess

__all__ = ("PANEL_PATH", "PanelHttpCounts", "measure")

PANEL_PATH = "/_ws_otel"
"""``WebSocketTelemetryConfig.panel_path``'s default."""
RING = 100
"""``WebSocketTelemetryConfig.max_messages_per_session``'s default."""
SETTLE_TIMEOUT = 30.0
_ENDPOINTS = ("sessions", "sessions_summary", "session", "live_snapshot")


@dataclass(frozen=True)
class PanelHttpCounts:
    """The store's fill and how many times each endpoint is timed."""

    sessions: int = 50
    """Connections opened; the default ``max_sessions`` is 50."""
    messages: int = 50
    """Echoed per connection: 50 received + 50 sent fill the default ring of 100."""
    message_bytes: int = 1024
    """The default ``max_payload_bytes``: every preview is the whole 1 KiB text."""
    keep_open: int = 25
    """Sessions still open while the API is timed; the rest are closed first."""
    requests: int = 30
    """Timed requests per endpoint, interleaved across endpoints."""
    warm_up: int = 3


@dataclass(frozen=True)
class _Timed:
    wall_ms: float
    server_cpu_ms: float
    size: int


async def _fill(server: ServerProcess, counts: PanelHttpCounts) -> list[ClientConnection]:
    """Open and echo on every connection, then close all but ``keep_open``; returns the open ones."""
    held = await loopback.hold_connections(server, counts.sessions, counts.messages, counts.message_bytes)
    keep = max(0, min(counts.keep_open, len(held)))
    # Every other one first, so open and closed sessions alternate in the list.
    order = [*range(1, len(held), 2), *range(0, len(held), 2)]
    closing = set(order[: len(held) - keep])
    await loopback.close_all([ws for index, ws in enumerate(held) if index in closing])
    return [ws for index, ws in enumerate(held) if index not in closing]


def _filled(sessions: list[dict[str, Any]], counts: PanelHttpCounts) -> list[dict[str, Any]]:
    """The fill's sessions: the start-up probe's one-message session may be in the store too."""
    return [s for s in sessions if s["path"] == "/echo" and s["messages_sent"] == counts.messages]


async def _settled(client: httpx.AsyncClient, counts: PanelHttpCounts) -> list[dict[str, Any]]:
    """The summaries once the server has ended every closed session; fails if the store is not as filled."""
    closed = counts.sessions - max(0, min(counts.keep_open, counts.sessions))
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        response = await client.get(f"{PANEL_PATH}/api/sessions", params={"summary": "1"})
        response.raise_for_status()
        sessions: list[dict[str, Any]] = response.json()["sessions"]
        fill = _filled(sessions, counts)
        if len(fill) == counts.sessions and sum(s["state"] == "closed" for s in fill) == closed:
            return sessions
        if time.monotonic() > deadline:
            states = [(s["state"], s["messages_received"], s["messages_sent"]) for s in sessions]
            raise RuntimeError(f"the panel store did not settle to the fill: {states}")
        await asyncio.sleep(0.05)


def _check_documents(documents: list[dict[str, Any]], counts: PanelHttpCounts) -> int:
    """Every session keeps ``min(2 * messages, 100)`` records with whole previews; returns the total."""
    if not documents:
        raise RuntimeError("the panel store holds none of the fill's sessions")
    kept = min(2 * counts.messages, RING)
    for document in documents:
        messages = document["messages"]
        if len(messages) != kept or any(
            m["truncated"] or len(m["payload"].encode()) != counts.message_bytes for m in messages
        ):
            raise RuntimeError(f"session {document['span_id']} does not hold {kept} whole previews")
    return sum(len(document["messages"]) for document in documents)


async def _timed(server: ServerProcess, request: Callable[[], Awaitable[int]]) -> _Timed:
    cpu = server.cpu_s()
    start = time.perf_counter()
    size = await request()
    wall = time.perf_counter() - start
    return _Timed(wall * 1e3, (server.cpu_s() - cpu) * 1e3, size)


def _requests(
    server: ServerProcess, client: httpx.AsyncClient, span_id: str, handshake_ms: list[float]
) -> dict[str, Callable[[], Awaitable[int]]]:
    async def get(path: str, params: dict[str, str] | None = None) -> int:
        response = await client.get(path, params=params)
        response.raise_for_status()
        return len(response.content)

    async def sessions() -> int:
        return await get(f"{PANEL_PATH}/api/sessions")

    async def sessions_summary() -> int:
        return await get(f"{PANEL_PATH}/api/sessions", {"summary": "1"})

    async def session() -> int:
        return await get(f"{PANEL_PATH}/api/sessions/{span_id}")

    async def live_snapshot() -> int:
        start = time.perf_counter()
        # As the page: defaults (permessage-deflate on); keepalive pings off, they are noise here.
        async with connect(
            server.url(f"{PANEL_PATH}/api/live"), open_timeout=loopback.OPEN_TIMEOUT, ping_interval=None, max_size=None
        ) as ws:
            handshake_ms.append((time.perf_counter() - start) * 1e3)
            frame = await ws.recv()
            if json.loads(frame)["event"] != "snapshot":
                raise RuntimeError("the live socket's first frame is not a snapshot")
            return len(frame.encode() if isinstance(frame, str) else frame)

    return {
        "sessions": sessions,
        "sessions_summary": sessions_summary,
        "session": session,
        "live_snapshot": live_snapshot,
    }


_REQUESTS = {
    "sessions": f"GET {PANEL_PATH}/api/sessions",
    "sessions_summary": f"GET {PANEL_PATH}/api/sessions?summary=1",
    "session": f"GET {PANEL_PATH}/api/sessions/{{span_id}}",
    "live_snapshot": f"WebSocket {PANEL_PATH}/api/live, connect to first (snapshot) frame",
}


BINDS = {
    "tcp_nodelay": "bound as `uvicorn --host --port` binds: accepted sockets get TCP_NODELAY",
    "no_tcp_nodelay": "bound as `uvicorn --reload` / `--workers N` bind (Config.bind_socket): no TCP_NODELAY",
}
"""How the server's socket is bound; the goal is read from ``tcp_nodelay``."""


@dataclass
class _Target:
    """One server with its store filled, and what the timing loop needs of it."""

    server: ServerProcess
    summaries: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    requests: dict[str, Callable[[], Awaitable[int]]]
    handshake_ms: list[float]


async def _prepare(server: ServerProcess, counts: PanelHttpCounts, stack: contextlib.AsyncExitStack) -> _Target:
    held = await _fill(server, counts)
    stack.push_async_callback(loopback.close_all, held)
    client = await stack.enter_async_context(
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60.0)
    )
    summaries = await _settled(client, counts)
    full = await client.get(f"{PANEL_PATH}/api/sessions")
    full.raise_for_status()
    documents: list[dict[str, Any]] = full.json()["sessions"]
    target = _filled(summaries, counts)[0]  # the newest of the fill: a full ring
    handshake_ms: list[float] = []
    requests = _requests(server, client, target["span_id"], handshake_ms)
    return _Target(server, summaries, documents, requests, handshake_ms)


def _result(target: _Target, timed: dict[str, list[_Timed]], counts: PanelHttpCounts, bind: str) -> dict[str, Any]:
    endpoints: dict[str, Any] = {}
    for name in _ENDPOINTS:
        samples = timed[name]
        endpoints[name] = {
            "request": _REQUESTS[name],
            "ms": summary([sample.wall_ms for sample in samples]),
            "server_cpu_ms": summary([sample.server_cpu_ms for sample in samples]),
            "bytes": samples[-1].size,
        }
    endpoints["live_snapshot"]["handshake_ms"] = summary(target.handshake_ms)
    newest = _filled(target.summaries, counts)[0]
    return {
        "bind": BINDS[bind],
        "sessions": len(target.summaries),
        "open": sum(s["state"] == "open" for s in target.summaries),
        "closed": sum(s["state"] == "closed" for s in target.summaries),
        "messages": _check_documents(_filled(target.documents, counts), counts),
        "messages_in_store": sum(len(document["messages"]) for document in target.documents),
        "session_state": newest["state"],
        "endpoints": endpoints,
    }


async def _measure(counts: PanelHttpCounts, ws: str) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        # httpx logs every request at INFO, which the in-process phases' apps may have switched on:
        # that would be timed with each request (and fill the console).
        quiet = logging.getLogger("httpx")
        stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.WARNING)
        servers: dict[str, ServerProcess] = {}
        for bind in BINDS:
            (servers[bind],) = (
                await loopback.start_servers([PANEL_APP], ws, tcp_nodelay=bind == "tcp_nodelay")
            ).values()
            stack.callback(loopback.stop_servers, [servers[bind]])
        targets = {bind: await _prepare(server, counts, stack) for bind, server in servers.items()}
        for _ in range(counts.warm_up):
            for target in targets.values():
                for request in target.requests.values():
                    await request()
        timed: dict[str, dict[str, list[_Timed]]] = {bind: {name: [] for name in _ENDPOINTS} for bind in BINDS}
        for target in targets.values():
            target.handshake_ms.clear()
        for index in range(counts.requests):
            shift = index % len(_ENDPOINTS)
            for name in _ENDPOINTS[shift:] + _ENDPOINTS[:shift]:
                for bind, target in targets.items():
                    timed[bind][name].append(await _timed(target.server, target.requests[name]))
        binds = {bind: _result(target, timed[bind], counts, bind) for bind, target in targets.items()}
    return {
        "app": "Litestar(debug=True); instrument_app(app, WebSocketTelemetryConfig(capture_payloads=True), "
        "tracer_provider=TracerProvider())",
        "client": f"httpx {httpx.__version__}, one keep-alive connection; websockets client for the live socket",
        "fill": {
            "sessions": counts.sessions,
            "keep_open": counts.keep_open,
            "echoes_per_session": counts.messages,
            "message_bytes": counts.message_bytes,
            "records_per_session": min(2 * counts.messages, RING),
        },
        "requests_per_endpoint": counts.requests,
        **binds,
    }


def measure(counts: PanelHttpCounts, ws: str) -> dict[str, Any]:
    """Fill a served app's store with real sessions, then time the panel API; see the module docstring."""
    return asyncio.run(_measure(counts, ws))
