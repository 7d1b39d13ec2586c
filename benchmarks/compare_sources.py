"""Two versions of the package side by side over loopback: ``python -m benchmarks.compare_sources REV``.

Serves the bare app, ``--variant`` from this checkout and ``--variant`` from git revision ``REV``
(checked out in a temporary worktree) at the same time, and runs server push and pipelined echo
against each in turn, round after round, so a change to the hot path is measured against what it
replaced under the same machine load. Prints the server CPU per message over bare, median
and range over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
from pathlib import Path

from benchmarks import loopback
from benchmarks.apps import VARIANTS
from benchmarks.loopback import ROOT, ServerProcess
from benchmarks.stats import difference, paired

__all__ = ("main",)

_SMALL = "x" * 100


async def _compare(revision: str, source: Path, variant: str, rounds: int, push: int, echo: int) -> None:
    servers = {
        "bare": ServerProcess("bare", "websockets"),
        "this checkout": ServerProcess(variant, "websockets"),
        revision: ServerProcess(variant, "websockets", package_source=source),
    }
    try:
        await asyncio.gather(*(server.wait_ready() for server in servers.values()))
        cpu: dict[str, dict[str, list[float]]] = {"push": {}, "pipelined echo": {}}
        for server in servers.values():  # warm up
            await loopback.push(server, push // 20)
            await loopback.echo(server, _SMALL, echo // 10, 32)
        for _ in range(rounds):
            for name, server in servers.items():
                pushed = await loopback.push(server, push)
                echoed = await loopback.echo(server, _SMALL, echo, 32)
                cpu["push"].setdefault(name, []).append(pushed.cpu_us_per_unit)
                cpu["pipelined echo"].setdefault(name, []).append(echoed.cpu_us_per_unit)
    finally:
        loopback.stop_servers(servers.values())
    for workload, per_server in cpu.items():
        bare = per_server["bare"]
        print(f"{workload}: server CPU µs per message, bare {sorted(bare)[len(bare) // 2]:.2f}")
        for name in servers:
            if name != "bare":
                extra = paired(per_server[name], bare, difference)
                print(f"  {variant} from {name}: {extra['median']:+.3f} ({extra['min']:+.3f} to {extra['max']:+.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_sources", description=__doc__)
    parser.add_argument("revision", help="the git revision to compare this checkout with")
    ours = sorted(name for name, variant in VARIANTS.items() if variant.ours)
    parser.add_argument("--variant", default="ours_debug", choices=ours)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--push", type=int, default=100_000, help="messages pushed per run")
    parser.add_argument("--echo", type=int, default=30_000, help="messages echoed per run, 32 in flight")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare-sources-") as workdir:
        tree = Path(workdir, "tree")
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.revision], cwd=ROOT, check=True)
        try:
            asyncio.run(_compare(args.revision, tree / "src", args.variant, args.rounds, args.push, args.echo))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
