"""``python -m benchmarks``: the one command that runs every benchmark."""

from __future__ import annotations

from benchmarks.run import main

raise SystemExit(main())
