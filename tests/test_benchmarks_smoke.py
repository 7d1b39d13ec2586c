"""The benchmarks still run: ``python -m benchmarks --quick`` completes and writes well-formed results.

Only that. Performance numbers are not asserted: a smoke run's counts are far too small to mean
anything, and the benchmarks are not part of the suite's pass/fail.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.litestar_compat import needs_litestar

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parent.parent


def run_quick(module: str, out: Path) -> None:
    """``python -m {module} --quick --out {out}`` from the project root; it must succeed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


def summaries(node: Any) -> list[dict[str, Any]]:
    """Every ``{"median", "min", "max", ...}`` summary in the results document."""
    if isinstance(node, dict):
        if "median" in node:
            return [node]
        return [found for value in node.values() for found in summaries(value)]
    if isinstance(node, list):
        return [found for value in node for found in summaries(value)]
    return []


@needs_litestar("2.22", "the benchmarks compare with Litestar's OpenTelemetry plugin (see the [bench] extra)")
def test_quick_benchmark_run_writes_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    run_quick("benchmarks", out)

    results = json.loads(out.read_text())
    variants = results["meta"]["variants"]
    assert {"bare", "otel_plugin", "otel_plugin_exclude", "ours_prod", "ours_debug"} <= set(variants)
    for section in ("inprocess", "tracemalloc", "close", "panel", "panel_http", "loopback", "rss", "goals"):
        assert results[section], section
    for workload in ("echo", "push", "churn"):
        assert set(results["inprocess"][workload]["variants"]) == set(variants)
    loopback_workloads = ("echo_100b_text", "echo_4kib_text", "echo_100b_binary", "echo_100b_text_pipelined")
    for workload in (*loopback_workloads, "push_100b", "churn"):
        assert set(results["loopback"][workload]["variants"]) == set(variants)
    panel_http = results["panel_http"]["ours_debug"]
    for bind in ("tcp_nodelay", "no_tcp_nodelay"):
        served = panel_http[bind]
        assert served["open"] >= 1, bind
        assert served["closed"] >= 1, bind
        endpoints = served["endpoints"]
        assert set(endpoints) == {"sessions", "sessions_summary", "session", "live_snapshot"}, bind
        assert all(entry["bytes"] > 0 for entry in endpoints.values()), bind
        assert all(entry["ms"]["n"] == panel_http["requests_per_endpoint"] for entry in endpoints.values()), bind
    found = summaries({key: value for key, value in results.items() if key not in ("meta", "goals")})
    assert len(found) > 100
    for summary in found:
        assert summary["n"] >= 1
        assert all(math.isfinite(value) for value in (summary["median"], summary["min"], summary["max"]))
        assert summary["min"] <= summary["median"] <= summary["max"]
    goals = {goal["goal"] for goal in results["goals"]}
    assert "ending a session with a full ring" in goals
    assert "panel API over HTTP, full store: GET /api/sessions" in goals
    assert all(isinstance(goal["met"], bool) for goal in results["goals"])
    assert "#### Goals" in out.with_suffix(".md").read_text()


def test_quick_long_session_run_counts_the_exported_spans(tmp_path: Path) -> None:
    out = tmp_path / "long_sessions.json"
    run_quick("benchmarks.long_sessions", out)

    section = json.loads(out.read_text())["long_sessions"]
    assert set(section["rates"]) == {"1", "100", "10000"}
    for rate, results in section["rates"].items():
        assert results["messages_per_session"] == int(rate) * 2
        assert set(results["variants"]) == {"long_bare", "long_ours_interval_1s", "long_ours_at_close"}
        at_close = results["variants"]["long_ours_at_close"]["spans"]
        assert at_close["session_spans"]["median"] == 1
        assert at_close["messages_spans"]["median"] == 0
        interval = results["variants"]["long_ours_interval_1s"]["spans"]
        assert interval["messages_spans"]["median"] >= 1
        kept = interval["messages_events"]["median"] + interval["session_events"]["median"] - 2  # accept, close
        dropped = interval["messages_dropped"]["median"] + interval["session_dropped"]["median"]
        assert kept + dropped == int(rate) * 2
        assert results["variants"]["long_ours_interval_1s"]["export_thread_us_per_message"]["min"] > 0
        assert results["variants"]["long_ours_at_close"]["export_thread_us_per_message"]["max"] == 0  # no thread
    assert [goal["goal"].rsplit(" ", 1)[-1] for goal in section["goals"]] == ["100/s", "10,000/s"]
    assert all(isinstance(goal["met"], bool) for goal in section["goals"])
    assert "| 10,000/s |" in out.with_suffix(".md").read_text()
