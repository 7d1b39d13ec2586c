"""Two versions of the package side by side over loopback: ``python -m benchmarks.compare_sources REV``.

Serves the bare app, ``--variant`` from this checkout and ``--variant`` from git revision ``REV``
(checked out in a temporary worktree) at the same time, and runs server push, pipelined echo and
connection churn (connect, one echo, close) against each in turn, round after round, so a change
is measured against what it replaced under the same machine load. Prints the server CPU per message (per connection for
churn) over bare, median and range over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import loopback
from benchmarks.apps import VARIANTS
from benchmarks.loopback import ROOT, ServerProcess
from benchmarks.stats import difference, paired

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.loopback import Sample

__all__ = ("main",)

_SMALL = "x" * 100


@dataclass(frozen=True)
class _Counts:
    """Units per run of each workload; a workload with 0 is not run."""

    push: int
    echo: int
    churn: int

    def workloads(self, share: int = 1) -> dict[str, Callable[[ServerProcess], Awaitable[Sample]]]:
        """Each workload at ``1/share`` of its count (a warm-up runs a tenth)."""
        every: dict[str, tuple[int, Callable[[ServerProcess], Awaitable[Sample]]]] = {
            "push": (self.push, lambda server: loopback.push(server, self.push // share)),
            "pipelined echo": (self.echo, lambda server: loopback.echo(server, _SMALL, self.echo // share, 32)),
            "churn": (self.churn, lambda server: loopback.churn(server, self.churn // share)),
        }
        return {name: run for name, (count, run) in every.items() if count}


async def _compare(revision: str, source: Path, variant: str, rounds: int, counts: _Counts) -> None:
    servers = {
        "bare": ServerProcess("bare", "websockets"),
        "this checkout": ServerProcess(variant, "websockets"),
        revision: ServerProcess(variant, "websockets", package_source=source),
    }
    try:
        await asyncio.gather(*(server.wait_ready() for server in servers.values()))
        workloads = counts.workloads()
        cpu: dict[str, dict[str, list[float]]] = {workload: {} for workload in workloads}
        for server in servers.values():  # warm up
            for run in counts.workloads(share=10).values():
                await run(server)
        for _ in range(rounds):
            for name, server in servers.items():
                for workload, run in workloads.items():
                    cpu[workload].setdefault(name, []).append((await run(server)).cpu_us_per_unit)
    finally:
        loopback.stop_servers(servers.values())
    for workload, per_server in cpu.items():
        bare = per_server["bare"]
        unit = "connection" if workload == "churn" else "message"
        print(f"{workload}: server CPU µs per {unit}, bare {sorted(bare)[len(bare) // 2]:.2f}")
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
    parser.add_argument("--churn", type=int, default=1_000, help="connections per run (0: no churn)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare-sources-") as workdir:
        tree = Path(workdir, "tree")
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.revision], cwd=ROOT, check=True)
        try:
            counts = _Counts(args.push, args.echo, args.churn)
            asyncio.run(_compare(args.revision, tree / "src", args.variant, args.rounds, counts))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
