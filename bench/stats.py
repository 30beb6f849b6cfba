"""Percentiles, side-by-side ratios over rounds, drain rates from depth samples, and how busy
the machine's cores were."""

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from stack.procfs import cpu_ticks, stat_fields


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores have spent since boot on anything but idling or
    waiting for a disk, from /proc/stat: every process's, the database server's included."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])
    return (sum(int(f) for f in fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(proc: Path = Path("/proc")) -> float | None:
    """CPU seconds spent by this machine's PostgreSQL server processes (user and system, the
    postmaster's reaped children included: the backends of connections closed since), or None
    where none can be seen (another host, another container): on the same cores as the
    workers, its work per job is part of what limits their rate. Every database's, so only
    meaningful while the bench is all the server does."""
    total, seen = 0, False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended since the listing
        name, fields = stat_fields(text)
        if name != "postgres":
            continue
        seen = True
        total += cpu_ticks(fields)  # the postmaster's included: it reaps finished backends
    return total / os.sysconf("SC_CLK_TCK") if seen else None


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
    (time, items left) samples: the steady state, without start-up and the last stragglers.

    Each crossing's time is placed on the line between the samples around it, so a drain
    faster than the sampling (every sample before it above 90 %, the next under 10 %) is the
    rate of that step, not "nothing measured". NaN if the backlog was never seen above 90 %
    before it fell, or never fell to 10 %.
    """
    t90 = _crossing(samples, total * 0.9)
    t10 = _crossing(samples, total * 0.1)
    if t90 is None or t10 is None or t10 <= t90:
        return float("nan")
    return total * 0.8 / (t10 - t90)


def _crossing(samples: Sequence[tuple[float, int]], level: float) -> float | None:
    """When the items left first fell to `level`, between the last sample above it and the
    first at or below it; None without both."""
    for (t0, left0), (t1, left1) in pairwise(samples):
        if left0 > level >= left1:
            return t0 + (t1 - t0) * (left0 - level) / (left0 - left1)
    return None
