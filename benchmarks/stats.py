"""Medians and spreads over rounds; ratios and differences paired with the same round's bare run."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("Summary", "difference", "paired", "ratio", "summary")

Summary = dict[str, Any]
"""``{"median", "min", "max", "n", "values"}``: what every measured quantity is reported as."""


def summary(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("summary of no values")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": [round(value, 6) for value in values],
    }


def paired(values: Sequence[float], reference: Sequence[float], combine: Callable[[float, float], float]) -> Summary:
    """Combine each round's value with the reference from the same round, then summarise.

    Pairing cancels drift of the machine between rounds, which a ratio of medians would keep.
    """
    return summary([combine(value, ref) for value, ref in zip(values, reference, strict=True)])


def ratio(value: float, reference: float) -> float:
    return value / reference


def difference(value: float, reference: float) -> float:
    return value - reference
