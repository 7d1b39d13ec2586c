"""The loopback phases: throughput with server CPU per unit, and server RSS per open connection.

Each round runs every workload against every variant in turn (A B C A B C ...); ratios and
differences are paired with the same round's bare run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks import loopback
from benchmarks.stats import difference, paired, ratio, summary

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from benchmarks.loopback import Sample, ServerProcess

__all__ = ("LoopbackCounts", "memory", "throughput")


@dataclass(frozen=True)
class LoopbackCounts:
    """Units per run of each loopback workload.

    Echoes run ping-pong (one message in flight, as the reference measurements did), and once more
    pipelined with ``window`` in flight, where the server rather than the round trip is the bottleneck.
    """

    echo_small: int
    echo_large: int
    echo_binary: int
    echo_pipelined: int
    push: int
    churn: int
    window: int = 32


_Workload = tuple[str, str, "Callable[[ServerProcess], Awaitable[Sample]]"]


def _workloads(counts: LoopbackCounts) -> list[_Workload]:
    small, large, binary = "x" * 100, "x" * 4096, b"x" * 100
    return [
        ("echo_100b_text", "message", lambda s: loopback.echo(s, small, counts.echo_small, 1)),
        ("echo_4kib_text", "message", lambda s: loopback.echo(s, large, counts.echo_large, 1)),
        ("echo_100b_binary", "message", lambda s: loopback.echo(s, binary, counts.echo_binary, 1)),
        (
            "echo_100b_text_pipelined",
            "message",
            lambda s: loopback.echo(s, small, counts.echo_pipelined, counts.window),
        ),
        ("push_100b", "message", lambda s: loopback.push(s, counts.push)),
        ("churn", "connection", lambda s: loopback.churn(s, counts.churn)),
    ]


async def _throughput(variants: Sequence[str], rounds: int, counts: LoopbackCounts, ws: str) -> dict[str, Any]:
    workloads = _workloads(counts)
    samples: dict[str, dict[str, list[Sample]]] = {name: {v: [] for v in variants} for name, _, _ in workloads}
    servers = await loopback.start_servers(variants, ws)
    try:
        warm_up = _workloads(LoopbackCounts(200, 100, 200, 500, 1000, 10, counts.window))
        for _, _, run in warm_up:
            for variant in variants:
                await run(servers[variant])
        for _ in range(rounds):
            for name, _, run in workloads:
                for variant in variants:
                    samples[name][variant].append(await run(servers[variant]))
    finally:
        loopback.stop_servers(servers.values())
    results: dict[str, Any] = {}
    for name, unit, _ in workloads:
        bare_rate = [sample.rate for sample in samples[name]["bare"]]
        bare_cpu = [sample.cpu_us_per_unit for sample in samples[name]["bare"]]
        per_variant = {}
        for variant in variants:
            rate = [sample.rate for sample in samples[name][variant]]
            cpu = [sample.cpu_us_per_unit for sample in samples[name][variant]]
            per_variant[variant] = {
                "rate_per_s": summary(rate),
                "rate_ratio": paired(rate, bare_rate, ratio),
                "server_cpu_us": summary(cpu),
                "server_cpu_ratio": paired(cpu, bare_cpu, ratio),
                "server_cpu_extra_us": paired(cpu, bare_cpu, difference),
            }
        units = samples[name]["bare"][0].units
        results[name] = {"unit": unit, "units_per_run": units, "variants": per_variant}
    return results


def throughput(variants: Sequence[str], rounds: int, counts: LoopbackCounts, ws: str) -> dict[str, Any]:
    """Messages (or connections) per second and server CPU µs per unit, every variant every round."""
    return asyncio.run(_throughput(variants, rounds, counts, ws))


async def _rss_per_connection(server: ServerProcess, connections: int, messages: int, size: int) -> float:
    """KiB of server RSS per connection: after ``connections`` opened and echoed, minus just before."""
    await loopback.close_all(await loopback.hold_connections(server, 3, messages, size))
    await asyncio.sleep(0.2)
    before = server.rss()
    held = await loopback.hold_connections(server, connections, messages, size)
    try:
        await asyncio.sleep(0.5)
        after = server.rss()
    finally:
        await loopback.close_all(held)
    return (after - before) / 1024 / connections


async def _memory(
    variants: Sequence[str], rounds: int, cases: dict[str, tuple[int, int, int]], ws: str
) -> dict[str, Any]:
    kib: dict[str, dict[str, list[float]]] = {case: {v: [] for v in variants} for case in cases}
    for _ in range(rounds):
        for case, (connections, messages, size) in cases.items():
            servers = await loopback.start_servers(variants, ws)  # fresh: freed memory would hide new allocations
            try:
                for variant in variants:
                    kib[case][variant].append(await _rss_per_connection(servers[variant], connections, messages, size))
            finally:
                loopback.stop_servers(servers.values())
    results: dict[str, Any] = {}
    for case, (connections, messages, size) in cases.items():
        bare = kib[case]["bare"]
        results[case] = {
            "connections": connections,
            "messages_per_connection": messages,
            "message_bytes": size,
            "variants": {
                variant: {
                    "rss_kib_per_connection": summary(kib[case][variant]),
                    "rss_kib_over_bare": paired(kib[case][variant], bare, difference),
                }
                for variant in variants
            },
        }
    return results


def memory(variants: Sequence[str], rounds: int, cases: dict[str, tuple[int, int, int]], ws: str) -> dict[str, Any]:
    """Server RSS per open connection for each case ``name: (connections, echoed messages each, bytes)``."""
    return asyncio.run(_memory(variants, rounds, cases, ws))
