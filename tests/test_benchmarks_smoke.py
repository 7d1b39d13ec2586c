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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parent.parent


def summaries(node: Any) -> list[dict[str, Any]]:
    """Every ``{"median", "min", "max", ...}`` summary in the results document."""
    if isinstance(node, dict):
        if "median" in node:
            return [node]
        return [found for value in node.values() for found in summaries(value)]
    if isinstance(node, list):
        return [found for value in node for found in summaries(value)]
    return []


def test_quick_benchmark_run_writes_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

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
