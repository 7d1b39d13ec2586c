"""Serve one variant with uvicorn in this process: ``python -m benchmarks.server VARIANT [--ws websockets]``.

``VARIANT`` may also be ``ours_debug_panel`` (``apps.PANEL_APP``), the panel API benchmark's app, or
one of ``apps.LONG_SESSION_APPS``, the long-session benchmark's.

The parent (``benchmarks.loopback``) reads the port from the first line of stdout. The socket is
bound here before uvicorn starts, so there is no race for a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import sys
import warnings

import uvicorn
from uvicorn.config import UvicornDeprecationWarning

from benchmarks.apps import LONG_SESSION_APPS, PANEL_APP, VARIANTS, build_served

__all__ = ("main", "raise_open_files_limit")


def raise_open_files_limit() -> None:
    """A thousand open connections need more than the common 1,024 file descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted([*VARIANTS, PANEL_APP, *LONG_SESSION_APPS]))
    parser.add_argument("--ws", default="websockets", help="uvicorn WebSocket implementation (default: websockets)")
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="bind as `uvicorn --host --port` does, so accepted sockets get TCP_NODELAY (default: as "
        "`uvicorn --reload` or `--workers N` bind, without it)",
    )
    args = parser.parse_args(argv)
    # uvicorn deprecates its "websockets" implementation (legacy websockets API); we measure it on purpose.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UvicornDeprecationWarning)
    raise_open_files_limit()
    app = build_served(args.variant).app
    # asyncio sets TCP_NODELAY on an accepted socket only when the listening socket's proto is
    # IPPROTO_TCP: so it is for `uvicorn --host --port` (getaddrinfo), not for uvicorn's own
    # `Config.bind_socket` (`--reload`, `--workers N`), whose proto is 0, as this one's was.
    proto = socket.IPPROTO_TCP if args.tcp_nodelay else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sys.stdout.write(f"{sock.getsockname()[1]}\n")
    sys.stdout.flush()
    config = uvicorn.Config(
        app, ws=args.ws, log_level="warning", access_log=False, lifespan="on", backlog=4096, workers=1
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
