from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .collector import RotelCollector, start_rotel
from .receiver import OtlpGrpcReceiver

if TYPE_CHECKING:
    from collections.abc import Generator
    from pathlib import Path


@pytest.fixture
def otlp_receiver() -> Generator[OtlpGrpcReceiver, None, None]:
    """OTLP/gRPC trace receiver on a free loopback port; stopped after the test."""
    receiver = OtlpGrpcReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def rotel_collector(otlp_receiver: OtlpGrpcReceiver, tmp_path: Path) -> Generator[RotelCollector, None, None]:
    """A running rotel-agent whose OTLP/gRPC and OTLP/HTTP receivers export traces to ``otlp_receiver``.

    If the agent cannot start the fixture raises (test error) with the agent's output; nothing is skipped.
    """
    workdir = tmp_path / "rotel"
    workdir.mkdir()
    collector = start_rotel(otlp_receiver.endpoint, workdir, receiver=otlp_receiver)
    try:
        yield collector
    finally:
        collector.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the collector's output and the spans received so far to failing export tests."""
    report = yield
    collector = getattr(item, "funcargs", {}).get("rotel_collector")
    if report.failed and isinstance(collector, RotelCollector):
        report.sections.append(("rotel-agent", collector.describe()))
        if collector.receiver is not None:
            names = [span["name"] for span in collector.receiver.spans()]
            report.sections.append(("otlp receiver", f"{collector.receiver.request_count} requests, spans: {names}"))
    return report
