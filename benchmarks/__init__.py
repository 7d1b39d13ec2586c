"""Overhead and memory benchmarks of ``litestar_ws_otel`` against the bare app and other WebSocket instrumentation.

Run ``python -m benchmarks`` from the repository root; ``docs/performance.md`` explains the numbers.
"""
