"""The export's state for the panel, read from the SDK's log records without changing what is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from litestar_ws_otel.export_health import EXPORT_LOGGERS, ExportHealth


@pytest.fixture
def health(monkeypatch: pytest.MonkeyPatch) -> Iterator[ExportHealth]:
    """A fresh watcher, alone on the export loggers: the SDK's ``DuplicateFilter`` drops a record it saw
    in the last 20 s, so a second run in one process (as mutmut's) would otherwise see nothing."""
    for name in EXPORT_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    watcher = ExportHealth()
    watcher.watch()
    watcher.watch()  # once is enough: a second call adds nothing
    yield watcher
    for name in EXPORT_LOGGERS:
        logging.getLogger(name).removeFilter(watcher)


def test_the_newest_export_problem_is_noted_and_every_record_still_logged(
    health: ExportHealth, caplog: pytest.LogCaptureFixture
) -> None:
    assert health.status() == {"error": None, "logger": None, "at": None, "problems": 0}
    grpc = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    assert grpc.filters.count(health) == 1
    with caplog.at_level(logging.INFO):
        grpc.info("exported fine")  # not a problem
        grpc.warning("Transient error %s encountered while exporting traces to %s", "UNAVAILABLE", "localhost:4317")
        logging.getLogger("opentelemetry.sdk._shared_internal").error("Exception while exporting %s.", "Span")
    status = health.status()
    assert status["error"] == "Exception while exporting Span."
    assert status["logger"] == "opentelemetry.sdk._shared_internal"
    assert status["problems"] == 2
    assert isinstance(status["at"], float)
    assert [r.getMessage() for r in caplog.records] == [
        "exported fine",
        "Transient error UNAVAILABLE encountered while exporting traces to localhost:4317",
        "Exception while exporting Span.",
    ]  # the filter lets every record through


def test_a_record_that_does_not_format_still_counts(health: ExportHealth) -> None:
    record = logging.LogRecord(
        "opentelemetry.sdk.trace.export", logging.ERROR, __file__, 1, "broken %s %s", ("one",), None
    )
    assert health.filter(record) is True
    assert health.status()["error"] == "broken %s %s"
