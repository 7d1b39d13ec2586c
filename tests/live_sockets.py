"""Counting the panel's live sockets from the outside, to prove that each one ends."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


@dataclass
class LiveSockets:
    """Live-socket handlers of one test's panels: running now, started so far, events they sent."""

    live: int = 0
    """Handlers still running: back to zero once every browser has gone."""
    opened: int = 0
    """Handlers started since the test began."""
    events: int = 0
    """Event frames handed to ``send`` (counted by tests that hold ``send``)."""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        self.live += 1
        self.opened += 1
        try:
            yield
        finally:
            self.live -= 1

    def wrap(self, serve_live: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """``serve_live``, counted: what the panel's route calls for each live socket."""

        async def counted(*args: Any, **kwargs: Any) -> None:
            async with self.serving():
                await serve_live(*args, **kwargs)

        return counted
