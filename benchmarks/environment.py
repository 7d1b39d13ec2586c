"""Where and on what a run was made: machine, package versions, git revision; recorded with every result."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

__all__ = ("git_revision", "machine", "versions")

ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = (
    "litestar-ws-otel",
    "litestar",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi",
    "uvicorn",
    "websockets",
    "msgspec",
    "litestar-debug-toolbar",
)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_revision() -> str | None:
    """The short revision of ``HEAD``, with ``+dirty src`` when the package source has local changes."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{revision}{'+dirty src' if dirty.stdout.strip() else ''}"


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
