"""Where the time goes: ``python -m benchmarks.profile [--variant ours_debug] [--workload churn]``.

Runs one in-process workload under pyinstrument (``pip install pyinstrument``) and prints the
call tree, so a missed goal comes with the functions that cost it.
"""

from __future__ import annotations

import argparse
import asyncio

from benchmarks.apps import VARIANTS, build_app
from benchmarks.asgi_driver import lifespan, run_echo, run_push

__all__ = ("main",)

_MESSAGE = {"type": "websocket.receive", "text": "x" * 100}


async def _run(variant: str, workload: str, count: int, interval: float) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:  # pragma: no cover - an optional tool
        raise SystemExit("profiling needs pyinstrument: pip install pyinstrument") from exc
    app = build_app(variant).app
    async with lifespan(app):
        await run_echo(app, _MESSAGE, 1000)
        profiler = Profiler(interval=interval, async_mode="disabled")
        with profiler:
            if workload == "echo":
                await run_echo(app, _MESSAGE, count)
            elif workload == "push":
                await run_push(app, count)
            else:
                for _ in range(count):
                    await run_echo(app, _MESSAGE, 1)
    return str(profiler.output_text(unicode=True, color=False, show_all=False, timeline=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="ours_debug", choices=sorted(VARIANTS))
    parser.add_argument("--workload", default="churn", choices=("echo", "push", "churn"))
    parser.add_argument("--count", type=int, default=None, help="messages (echo, push) or connections (churn)")
    parser.add_argument("--interval", type=float, default=0.0001, help="sampling interval in seconds")
    args = parser.parse_args(argv)
    count = args.count or (20_000 if args.workload == "churn" else 300_000)
    print(asyncio.run(_run(args.variant, args.workload, count, args.interval)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
