from __future__ import annotations

import pytest

from litestar_ws_otel import WebSocketTelemetryConfig
from litestar_ws_otel.provider import batch_limits


@pytest.fixture(autouse=True)
def no_bsp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    monkeypatch.delenv("OTEL_BSP_MAX_QUEUE_SIZE", raising=False)


def test_batches_of_full_sessions_stay_under_half_the_grpc_limit() -> None:
    config = WebSocketTelemetryConfig()
    batch, queue = batch_limits(config, capture_payloads=True)
    assert batch is not None
    assert queue is not None
    # a full ring of 1 KiB previews encodes to about 123 KB (measured through the collector)
    assert batch * 123_000 < 2 * 1024 * 1024
    assert batch >= 8
    assert batch <= queue <= 2048


def test_without_payloads_batches_are_larger() -> None:
    config = WebSocketTelemetryConfig()
    with_payloads, _ = batch_limits(config, capture_payloads=True)
    without_payloads, _ = batch_limits(config, capture_payloads=False)
    assert with_payloads is not None
    assert without_payloads is not None
    assert without_payloads > 3 * with_payloads


def test_binary_hex_previews_count_double() -> None:
    text_only = WebSocketTelemetryConfig(max_payload_bytes=64, binary_preview_bytes=4096)
    with_binary = WebSocketTelemetryConfig(max_payload_bytes=64, binary_preview_bytes=4096, capture_binary_preview=True)
    assert batch_limits(with_binary, capture_payloads=True)[0] < batch_limits(text_only, capture_payloads=True)[0]  # type: ignore[operator]


def test_small_sessions_get_large_batches_within_the_sdk_defaults() -> None:
    config = WebSocketTelemetryConfig(max_messages_per_session=1)
    batch, queue = batch_limits(config, capture_payloads=False)
    assert batch is not None
    assert queue is not None
    assert 100 < batch <= 512
    assert 1000 < queue <= 2048


def test_environment_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    assert batch_limits(WebSocketTelemetryConfig(), capture_payloads=True) == (None, None)
