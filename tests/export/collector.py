"""Run the ``rotel-agent`` OpenTelemetry collector (from the ``rotel`` wheel) as a foreground subprocess.

The agent receives OTLP/gRPC and OTLP/HTTP on free loopback ports and forwards traces over OTLP/gRPC
to an exporter endpoint (normally :class:`tests.export.receiver.OtlpGrpcReceiver`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psutil
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace.export import SpanExporter

    from .receiver import OtlpGrpcReceiver

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3
_ADDRESS_IN_USE = "Address already in use"
# Dropped from the agent's environment: it reads ROTEL_* as configuration, and proxies must not apply.
_ENV_PREFIXES_TO_DROP = ("ROTEL_", "OTEL_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")


class CollectorStartError(RuntimeError):
    pass


def rotel_binary() -> Path:
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        raise CollectorStartError("the 'rotel' package is not installed (pip install rotel)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "rotel-agent"
    if not os.access(binary, os.X_OK):
        raise CollectorStartError(f"rotel-agent binary missing or not executable: {binary}")
    return binary


def free_ports(count: int, host: str = HOST) -> list[int]:
    """Ask the OS for ``count`` distinct free TCP ports (all held open together, then released)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def agent_env() -> dict[str, str]:
    """The agent's environment: no ``ROTEL_*``/``OTEL_*`` settings, and this interpreter's ``libpython``.

    The agent embeds Python and links ``libpython``; without ``LD_LIBRARY_PATH`` it only starts where a
    system copy of the same version happens to exist (not for pyenv or tox interpreters).
    """
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_ENV_PREFIXES_TO_DROP)}
    env["NO_COLOR"] = "1"  # plain log lines in failure messages
    env["RUST_BACKTRACE"] = "1"
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
    return env


def _accepts_connections(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _listening_ports(pid: int) -> set[int]:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}


@dataclass
class RotelCollector:
    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    exporter_endpoint: str
    args: Sequence[str]
    log_path: Path
    receiver: OtlpGrpcReceiver | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{HOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def http_traces_endpoint(self) -> str:
        return f"{self.http_endpoint}/v1/traces"

    def exporter(self, protocol: str) -> SpanExporter:
        """An SDK OTLP exporter to this agent: OTLP/gRPC for ``grpc``, OTLP/HTTP (protobuf) otherwise."""
        if protocol == "grpc":
            return GrpcSpanExporter(endpoint=self.grpc_endpoint, insecure=True, timeout=10)
        return HttpSpanExporter(endpoint=self.http_traces_endpoint, timeout=10)

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"<could not read {self.log_path}: {exc}>"

    def describe(self) -> str:
        return (
            f"rotel-agent pid={self.process.pid} returncode={self.process.poll()}\n"
            f"command: {' '.join(self.args)}\n--- rotel output ---\n{self.output()}--- end rotel output ---"
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll until both receiver ports accept TCP connections and are owned by this process."""
        deadline = time.monotonic() + timeout
        ports = {self.grpc_port, self.http_port}
        while True:
            if self.process.poll() is not None:
                raise CollectorStartError(f"rotel-agent exited before it was ready\n{self.describe()}")
            if all(_accepts_connections(p) for p in ports) and ports <= _listening_ports(self.process.pid):
                return
            if time.monotonic() >= deadline:
                raise CollectorStartError(f"rotel-agent not ready after {timeout:.0f}s\n{self.describe()}")
            # Poll interval that also returns at once if the agent exits.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=timeout)
        finally:
            if self._log_file is not None:
                self._log_file.close()


def build_args(binary: Path, grpc_port: int, http_port: int, exporter_endpoint: str, workdir: Path) -> list[str]:
    return [
        str(binary),
        "start",  # no --daemon: stays in the foreground as our child
        "--otlp-grpc-endpoint", f"{HOST}:{grpc_port}",
        "--otlp-http-endpoint", f"{HOST}:{http_port}",
        "--otlp-receiver-logs-disabled",
        "--pid-file", str(workdir / "rotel.pid"),  # keep away from the shared /tmp default
        "--log-file", str(workdir / "rotel.log"),
        "--exporter", "otlp",
        "--otlp-exporter-endpoint", exporter_endpoint,
        "--otlp-exporter-protocol", "grpc",
        "--batch-timeout", "50ms",  # default 200ms; a small timeout keeps tests quick
        "--otlp-exporter-request-timeout", "5s",
        "--otlp-exporter-retry-initial-backoff", "100ms",  # default 5s
        "--otlp-exporter-retry-max-backoff", "1s",
        "--otlp-exporter-retry-max-elapsed-time", "20s",
    ]  # fmt: skip


def _spawn(exporter_endpoint: str, workdir: Path, attempt: int) -> RotelCollector:
    grpc_port, http_port = free_ports(2)
    args = build_args(rotel_binary(), grpc_port, http_port, exporter_endpoint, workdir)
    log_path = workdir / f"rotel-output-{attempt}.txt"
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=agent_env(), cwd=workdir
        )
    except BaseException:
        log_file.close()
        raise
    return RotelCollector(process, grpc_port, http_port, exporter_endpoint, args, log_path, _log_file=log_file)


def start_rotel(
    exporter_endpoint: str,
    workdir: Path,
    timeout: float = START_TIMEOUT,
    receiver: OtlpGrpcReceiver | None = None,
) -> RotelCollector:
    """Start rotel-agent and wait until its receivers are up; raise with its output if it can't start.

    ``workdir`` holds the agent's output (and pid file); the caller owns it (e.g. pytest's ``tmp_path``).
    """
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    for attempt in range(1, START_ATTEMPTS + 1):
        collector = _spawn(exporter_endpoint, workdir, attempt)
        collector.receiver = receiver
        try:
            collector.wait_ready(max(deadline - time.monotonic(), 1.0))
        except CollectorStartError as exc:
            collector.stop()
            failures.append(f"attempt {attempt}: {exc}")
            # A port picked by free_ports() may be taken before the agent binds it: retry with new ports.
            if _ADDRESS_IN_USE not in collector.output() or time.monotonic() >= deadline:
                break
            continue
        except BaseException:
            collector.stop()
            raise
        return collector
    raise CollectorStartError("could not start rotel-agent:\n" + "\n\n".join(failures))
