"""Log telemetry problems once per kind: the package's one way of telling about its own failures.

Telemetry runs inside every WebSocket connection: a broken exporter, hook or processor would
otherwise log on every message and drown the app's own logs. The first occurrence is logged with
its traceback; later ones are dropped. Every module reports through ``report_once``; none keeps a
logger of its own.
"""

from __future__ import annotations

import logging

__all__ = ("logger", "report_once")

logger = logging.getLogger("litestar_ws_otel")

_reported: set[str] = set()


def report_once(
    where: str, exc: BaseException | None = None, *, level: int = logging.WARNING, detail: str = ""
) -> None:
    """Log ``where`` the first time it happens, with the exception's traceback if there is one.

    ``where`` is a fixed description, so the set of reported kinds stays small; what varies from one
    occurrence to the next (a message type a client chose) goes in ``detail``.
    """
    if where in _reported:
        return
    _reported.add(where)
    suffix = f": {detail}" if detail else ""
    logger.log(level, "litestar-ws-otel: %s%s (further occurrences are not logged)", where, suffix, exc_info=exc)
