"""``python -m benchmarks [--quick]``: every benchmark, every variant, interleaved; results as JSON and Markdown.

Phases, in order: in-process throughput (the precise overhead numbers), in-process memory
(tracemalloc), close cost and panel snapshot, the panel API over HTTP at a full store (uvicorn
subprocess), loopback throughput (uvicorn subprocess), loopback memory (server RSS). ``--quick``
shrinks every count to a smoke run that only proves the benchmarks still work; its numbers mean
nothing.

One more phase runs only when asked for, as it takes minutes: ``--phases long``, what incremental
export costs over long sessions (``benchmarks.long_sessions``, 3 rounds of 60 s sessions at three
rates, about 9 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import environment, inprocess, long_sessions, loopback_suite, panel_http
from benchmarks.apps import VARIANTS, available_variants
from benchmarks.report import GOAL_VARIANT, evaluate_goals, render_markdown
from benchmarks.server import raise_open_files_limit

__all__ = ("FULL", "QUICK", "Settings", "main")

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = ("inprocess", "memory", "close", "panel_http", "loopback", "rss")
"""The phases a run has unless ``--phases`` says otherwise."""
OPTIONAL_PHASES = ("long",)
"""Run only when named in ``--phases``."""


@dataclass(frozen=True)
class Settings:
    """Every count the run uses; recorded in the results so a number can be traced to how it was made."""

    rounds: int = 5
    inprocess: inprocess.ThroughputCounts = field(
        default_factory=lambda: inprocess.ThroughputCounts(echo=100_000, push=100_000, churn=5_000)
    )
    tracemalloc_connections: int = 200
    close_sessions: int = 100
    panel_repeats: int = 10
    panel_http: panel_http.PanelHttpCounts = field(default_factory=panel_http.PanelHttpCounts)
    """Default limits full: 50 sessions x 100 records of 1 KiB previews; 30 timed requests per endpoint."""
    loopback: loopback_suite.LoopbackCounts = field(
        default_factory=lambda: loopback_suite.LoopbackCounts(
            echo_small=8_000, echo_large=4_000, echo_binary=8_000, echo_pipelined=30_000, push=100_000, churn=500
        )
    )
    rss_connections: int = 1_000
    rss_worst_connections: int = 200
    echo_messages: int = 50
    """Echoed per connection in the memory cases: 50 received + 50 sent fill the default ring of 100."""
    worst_message_bytes: int = 2048
    """Over ``max_payload_bytes`` (1024), so every record holds a maximum-size preview."""
    long_sessions: long_sessions.LongSessionSettings = long_sessions.FULL
    """The ``long`` phase; it has its own rounds (``--rounds`` sets both)."""


FULL = Settings()
QUICK = Settings(
    rounds=1,
    inprocess=inprocess.ThroughputCounts(echo=2_000, push=2_000, churn=50),
    tracemalloc_connections=10,
    close_sessions=5,
    panel_repeats=2,
    panel_http=panel_http.PanelHttpCounts(sessions=5, messages=10, keep_open=2, requests=3, warm_up=1),
    loopback=loopback_suite.LoopbackCounts(
        echo_small=100, echo_large=50, echo_binary=100, echo_pipelined=300, push=1000, churn=10
    ),
    rss_connections=20,
    rss_worst_connections=10,
    long_sessions=long_sessions.QUICK,
)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(settings: Settings, variants: list[str], phases: tuple[str, ...], ws: str, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": quick,
            "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
            "git": environment.git_revision(),
            "machine": environment.machine(),
            "load_average_start": os.getloadavg(),
            "versions": environment.versions(),
            "uvicorn_ws": ws,
            "settings": asdict(settings),
            "variants": {name: VARIANTS[name].label for name in variants},
            "skipped_variants": {
                name: f"needs {variant.requires}, not installed"
                for name, variant in VARIANTS.items()
                if not variant.available()
            },
            "notes": [
                "Tracing variants use an SDK TracerProvider with no exporter: instrumentation is measured, not export.",
                "In-process times are CPU time of this thread; overheads are paired with each round's bare run.",
                "Server CPU is read from /proc/<pid>/task/*/schedstat (ns on CPU), falling back to psutil.",
            ],
        }
    }
    ours = [name for name in variants if VARIANTS[name].ours]
    if "inprocess" in phases:
        _log(f"in-process throughput: {settings.rounds} rounds x {len(variants)} variants")
        results["inprocess"] = inprocess.throughput(variants, settings.rounds, settings.inprocess)
        if ours:
            results["sdk_span"] = inprocess.sdk_span_cost(ours[-1], settings.rounds, settings.inprocess.churn)
    if "memory" in phases:
        _log("in-process memory (tracemalloc)")
        n, m = settings.tracemalloc_connections, settings.echo_messages
        results["tracemalloc"] = {
            "echo_100b": inprocess.memory(variants, settings.rounds, n, m, 100),
            "worst_case": inprocess.memory(["bare", *ours], settings.rounds, n, m, settings.worst_message_bytes),
        }
    if "close" in phases and ours:
        _log("close cost and panel snapshot")
        close, apps = inprocess.close_cost(
            ["bare", *ours],
            settings.rounds,
            settings.close_sessions,
            settings.echo_messages,
            settings.worst_message_bytes,
        )
        results["close"] = close
        handle = apps[ours[-1]].handle
        assert handle is not None
        source = inprocess.ProcessorPanelSource(handle.processor)
        results["panel"] = {ours[-1]: inprocess.panel_snapshot(source, settings.rounds, settings.panel_repeats)}
    if "panel_http" in phases:
        _log("panel API over HTTP (uvicorn, debug app, full store)")
        results["panel_http"] = {GOAL_VARIANT: panel_http.measure(settings.panel_http, ws)}
    if "loopback" in phases:
        _log(f"loopback throughput (uvicorn --ws {ws})")
        results["loopback"] = loopback_suite.throughput(variants, settings.rounds, settings.loopback, ws)
    if "rss" in phases:
        _log("loopback memory (server RSS)")
        cases = {
            "echo_100b": (settings.rss_connections, settings.echo_messages, 100),
            "worst_case": (settings.rss_worst_connections, settings.echo_messages, settings.worst_message_bytes),
        }
        results["rss"] = loopback_suite.memory(variants, settings.rounds, cases, ws)
    if "long" in phases:
        long = settings.long_sessions
        _log(
            f"long sessions: {long.rounds} rounds x {len(long.rates)} rates x {long.duration_s:g} s (uvicorn --ws {ws})"
        )
        results["long_sessions"] = long_sessions.measure(long, ws)
    results["meta"]["load_average_end"] = os.getloadavg()
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    results["goals"] = evaluate_goals(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, one round: a smoke run, not a measurement")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, the long phase 3; --quick 1)")
    parser.add_argument("--variants", help=f"comma-separated subset of {','.join(VARIANTS)} (bare is always run)")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES + OPTIONAL_PHASES)} (default: all but "
        f"{','.join(OPTIONAL_PHASES)})",
    )
    parser.add_argument("--ws", default="websockets", help="uvicorn --ws implementation (default: websockets)")
    parser.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/<full|quick>.json)")
    args = parser.parse_args(argv)

    settings = QUICK if args.quick else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            parser.error("--rounds must be >= 1")
        settings = replace(
            settings, rounds=args.rounds, long_sessions=replace(settings.long_sessions, rounds=args.rounds)
        )
    available = [variant.name for variant in available_variants()]
    if args.variants:
        wanted = set(args.variants.split(",")) | {"bare"}
        unknown = wanted - set(VARIANTS)
        if unknown:
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
        variants = [name for name in available if name in wanted]
    else:
        variants = available
    phases = tuple(phase for phase in PHASES + OPTIONAL_PHASES if phase in args.phases.split(","))
    out: Path = args.out or RESULTS / f"{'quick' if args.quick else 'full'}.json"

    raise_open_files_limit()
    results = run(settings, variants, phases, args.ws, args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    markdown = out.with_suffix(".md")
    markdown.write_text(render_markdown(results))
    _log(f"done in {results['meta']['duration_s']} s: {out} and {markdown}")
    return 0
