"""Over loopback: uvicorn serving one variant in a subprocess, the ``websockets`` client in this process.

Wall-clock throughput on a shared two-core machine is noisy; the server's CPU time per message
(from ``/proc/<pid>/task/*/schedstat``, nanoseconds on CPU) is far steadier, so both are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection, connect

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "Sample",
    "ServerProcess",
    "churn",
    "echo",
    "hold_connections",
    "push",
    "start_servers",
    "stop_servers",
)

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0
OPEN_TIMEOUT = 60.0
_NS = 1e9


@dataclass(frozen=True)
class Sample:
    """One timed run: wall time, the server's CPU time over it, and how many units (messages, connections)."""

    wall_s: float
    server_cpu_s: float
    units: int

    @property
    def rate(self) -> float:
        return self.units / self.wall_s

    @property
    def cpu_us_per_unit(self) -> float:
        return self.server_cpu_s * 1e6 / self.units


class ServerProcess:
    """``python -m benchmarks.server VARIANT`` on 127.0.0.1, a port chosen by the kernel."""

    def __init__(self, variant: str, ws: str, *, tcp_nodelay: bool = False, package_source: Path | None = None) -> None:
        """``package_source``: a directory holding another ``litestar_ws_otel`` to serve instead of this one."""
        self.variant = variant
        path = [str(package_source) if package_source else None, str(ROOT), os.environ.get("PYTHONPATH")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.server",
                variant,
                "--ws",
                ws,
                *(["--tcp-nodelay"] if tcp_nodelay else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = 0
        self._ps = psutil.Process(self.proc.pid)
        self._schedstat = Path(f"/proc/{self.proc.pid}/task").exists()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def wait_ready(self) -> None:
        """Read the port, then retry a connection until uvicorn answers (which also warms the route up)."""
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), STARTUP_TIMEOUT)
        if not line.strip():
            raise RuntimeError(f"server for {self.variant} exited with {self.proc.wait()} before binding")
        self.port = int(line)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                async with connect(self.url("/echo"), open_timeout=OPEN_TIMEOUT) as ws:
                    await ws.send("ready")
                    await ws.recv()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server for {self.variant} did not start") from None
                await asyncio.sleep(0.05)

    def cpu_s(self) -> float:
        """CPU time of all the server's threads: scheduler nanoseconds if the kernel has them, else ticks."""
        if self._schedstat:
            total = 0
            try:
                for task in os.scandir(f"/proc/{self.proc.pid}/task"):
                    with contextlib.suppress(FileNotFoundError):
                        total += int(Path(task.path, "schedstat").read_text().split()[0])
                return total / _NS
            except OSError:
                self._schedstat = False
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self._ps.memory_info().rss)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def start_servers(variants: Iterable[str], ws: str, *, tcp_nodelay: bool = False) -> dict[str, ServerProcess]:
    """Start one server per variant, all at once (start-up is not measured), and wait until each answers.

    ``tcp_nodelay``: see ``benchmarks.server --tcp-nodelay``; the throughput and memory phases run without it.
    """
    servers = {variant: ServerProcess(variant, ws, tcp_nodelay=tcp_nodelay) for variant in variants}
    try:
        await asyncio.gather(*(server.wait_ready() for server in servers.values()))
    except BaseException:
        stop_servers(servers.values())
        raise
    return servers


def stop_servers(servers: Iterable[ServerProcess]) -> None:
    for server in servers:
        server.stop()


def _connect(url: str) -> connect:
    # Defaults otherwise (permessage-deflate on, as uvicorn's); keepalive pings off, they are noise here.
    return connect(url, open_timeout=OPEN_TIMEOUT, ping_interval=None, max_size=None)


async def echo(server: ServerProcess, payload: str | bytes, count: int, window: int = 1) -> Sample:
    """``count`` messages echoed on one connection, at most ``window`` in flight; the handshake is not timed.

    ``window=1`` is ping-pong: send, wait for the echo, send the next.
    """
    async with _connect(server.url("/echo")) as ws:
        credit = asyncio.Semaphore(window)

        async def read_all() -> None:
            for _ in range(count):
                await ws.recv()
                credit.release()

        cpu = server.cpu_s()
        start = time.perf_counter()
        reader = asyncio.create_task(read_all())
        for _ in range(count):
            await credit.acquire()
            await ws.send(payload)
        await reader
        wall = time.perf_counter() - start
        cpu = server.cpu_s() - cpu
    return Sample(wall, cpu, count)


async def push(server: ServerProcess, count: int, size: int = 100) -> Sample:
    """The server sends ``count`` messages as fast as the client reads them (one handshake, amortised)."""
    cpu = server.cpu_s()
    start = time.perf_counter()
    async with _connect(server.url(f"/push?n={count}&size={size}")) as ws:
        for _ in range(count):
            await ws.recv()
        wall = time.perf_counter() - start
        cpu = server.cpu_s() - cpu
    return Sample(wall, cpu, count)


async def churn(server: ServerProcess, count: int, payload: str = "x" * 100) -> Sample:
    """``count`` connections one after another: open, one echoed message, close handshake."""
    cpu = server.cpu_s()
    start = time.perf_counter()
    for _ in range(count):
        async with _connect(server.url("/echo")) as ws:
            await ws.send(payload)
            await ws.recv()
    wall = time.perf_counter() - start
    return Sample(wall, server.cpu_s() - cpu, count)


async def hold_connections(
    server: ServerProcess, connections: int, messages: int, size: int, concurrency: int = 50
) -> list[ClientConnection]:
    """Open ``connections`` to ``/echo``; each echoes ``messages`` fresh texts of ``size`` bytes and stays open."""
    opened: list[ClientConnection] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            ws = await _connect(server.url("/echo"))
            opened.append(ws)
            for number in range(messages):
                head = f"{index}:{number}:"
                await ws.send(head + "x" * (size - len(head)))
            for _ in range(messages):
                await ws.recv()

    try:
        await asyncio.gather(*(one(index) for index in range(connections)))
    except BaseException:
        await close_all(opened)
        raise
    return opened


async def close_all(connections: list[ClientConnection], concurrency: int = 100) -> None:
    for start in range(0, len(connections), concurrency):
        await asyncio.gather(*(ws.close() for ws in connections[start : start + concurrency]))
