"""Percentiles, side-by-side ratios over rounds, and drain rates from depth samples."""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100), interpolated between the nearest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """One figure measured in several rounds: its median, and its lowest and highest value."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        return cls(statistics.median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict:
        return {"median": self.median, "low": self.low, "high": self.high, "rounds": self.rounds}


def drain_rate(samples: Sequence[tuple[float, int]], total: int) -> float:
    """Items per second while the backlog fell from 90 % to 10 % of `total`, from
    (time, items left) samples: the steady state, without start-up and the last stragglers."""
    high = next((s for s in samples if s[1] <= total * 0.9), None)
    low = next((s for s in samples if s[1] <= total * 0.1), None)
    if high is None or low is None or low[0] <= high[0]:
        return float("nan")
    return (high[1] - low[1]) / (low[0] - high[0])
