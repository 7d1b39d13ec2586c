"""An export test app in a subprocess: started with ``python -m <module>``, read line by line, always stopped.

The app modules (``tests.export.apps``, ``tests.export.fault_apps``) import this module too, for
:class:`ReadyServer`: a uvicorn server that prints ``READY <port>`` on stdout once it listens.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator, Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "READY "
PROCESS_TIMEOUT = 20.0


class ReadyServer(uvicorn.Server):
    """A uvicorn server that prints ``READY <port>`` on stdout once it listens."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"{READY_PREFIX}{port}", flush=True)


def clean_env(drop_prefixes: tuple[str, ...], **variables: str) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop_prefixes``, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop_prefixes)}
    env.update(variables)
    return env


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@dataclass
class AppProcess:
    process: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    stderr_path: Path

    def describe(self) -> str:
        try:
            stderr = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            stderr = f"<could not read: {exc}>"
        return f"app pid={self.process.pid} returncode={self.process.poll()}\n--- app stderr ---\n{stderr}"

    def next_line(self, timeout: float = PROCESS_TIMEOUT) -> str | None:
        """The next stdout line; ``None`` once the app has closed stdout."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the app after {timeout}s\n{self.describe()}") from None

    def stdout_lines(self) -> list[str]:
        """Every remaining stdout line, until the app closes stdout."""
        lines: list[str] = []
        while (line := self.next_line()) is not None:
            lines.append(line)
        return lines

    def wait_line(self, prefix: str, timeout: float = PROCESS_TIMEOUT) -> str:
        """The rest of the next stdout line starting with ``prefix``; fails if the app exits first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {prefix!r} line from the app after {timeout}s\n{self.describe()}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(timeout=PROCESS_TIMEOUT)
                raise AssertionError(f"the app exited before printing {prefix!r}\n{self.describe()}")
            if line.startswith(prefix):
                return line.removeprefix(prefix)

    def sigterm(self) -> int:
        """Send SIGTERM and wait for the app to exit; its return code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the app did not exit on SIGTERM\n{self.describe()}") from None


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            lines.put(line.rstrip("\n"))
    lines.put(None)


@contextlib.contextmanager
def run_app_process(
    module: str, env: dict[str, str], workdir: Path, *, launcher: Sequence[str] = ()
) -> Iterator[AppProcess]:
    """``python -m <module>`` with ``env`` in ``workdir``; always stopped (SIGTERM, then SIGKILL) afterwards.

    The project root goes first on ``PYTHONPATH`` so that the app module can import ``tests.*``.
    ``launcher`` goes before the interpreter (``opentelemetry-instrument``, which then execs it).
    """
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    stderr_path = workdir / "app-stderr.txt"
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [*launcher, sys.executable, "-m", module],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**env, "PYTHONPATH": pythonpath},
            cwd=workdir,
            text=True,
            encoding="utf-8",
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines), name=f"{module}-stdout", daemon=True)
    reader.start()
    try:
        yield AppProcess(process, lines, stderr_path)
    finally:
        try:
            if process.poll() is None:
                stop_process(process, PROCESS_TIMEOUT)
        finally:
            reader.join(timeout=PROCESS_TIMEOUT)
            process.stdout.close()
