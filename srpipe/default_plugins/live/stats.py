"""What the live loop measures: frames read, shown and dropped, frame rate and latency."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50, 90, 99)
# Latencies are counted in whole milliseconds up to a minute (longer ones in the last count), so
# that a run of hours keeps what it measures in a fixed few hundred kilobytes
LATENCY_COUNTS_MS = 60_000


@dataclass
class Share:
    """The mean and the largest of a share measured per frame, kept as running figures."""

    total: float = 0.0
    count: int = 0
    largest: float = 0.0

    def add(self, value: float) -> None:
        self.total, self.count, self.largest = self.total + value, self.count + 1, max(self.largest, value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class LiveStats:
    """Counts and end-to-end latencies (seconds from a frame's arrival to its display)."""

    read: int = 0
    shown: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latency_counts: np.ndarray = field(default_factory=lambda: np.zeros(LATENCY_COUNTS_MS + 1, np.int64), repr=False)
    longest_latency: float = 0.0
    recent_latencies: deque = field(default_factory=lambda: deque(maxlen=30), repr=False)
    recent_shows: deque = field(default_factory=lambda: deque(maxlen=30), repr=False)
    reused: Share = field(default_factory=Share)  # per shown frame with tile reuse: the share reused
    deferred: Share = field(default_factory=Share)  # ... and the share left to later frames for want of time

    def record_shown(self, arrived: float, shown_at: float, reused: float | None = None,
                     deferred: float | None = None) -> None:
        self.shown += 1
        latency = shown_at - arrived
        self.latency_counts[min(max(round(latency * 1000), 0), LATENCY_COUNTS_MS)] += 1
        self.longest_latency = max(self.longest_latency, latency)
        self.recent_latencies.append(latency)
        self.recent_shows.append(shown_at)
        if reused is not None:
            self.reused.add(reused)
        if deferred is not None:
            self.deferred.add(deferred)

    @property
    def fps(self) -> float:
        """Frames shown per second over the whole run."""
        return self.shown / self.seconds if self.seconds else 0.0

    @property
    def recent_fps(self) -> float:
        """Frames shown per second over the last (up to 30) frames."""
        if len(self.recent_shows) < 2:
            return 0.0
        span = self.recent_shows[-1] - self.recent_shows[0]
        return (len(self.recent_shows) - 1) / span if span > 0 else 0.0

    def latency_ms(self, percentile: float) -> float:
        """The latency under which ``percentile`` % of the frames shown were, in whole milliseconds
        (the nearest rank); 100: the longest, as measured."""
        if not self.shown:
            return 0.0
        if percentile >= 100:
            return self.longest_latency * 1000
        rank = max(1, -(-self.shown * percentile // 100))
        return float(np.searchsorted(np.cumsum(self.latency_counts), rank))

    def summary(self) -> str:
        latency = ", ".join(f"p{p} {self.latency_ms(p):.0f}" for p in PERCENTILES)
        reuse = f"; {self.reused.mean:.0%} of tiles reused" if self.reused.count else ""
        if self.deferred.mean > 0:
            reuse += f", {self.deferred.mean:.0%} late (left to later frames to keep up)"
        return (
            f"{self.shown} frames shown, {self.dropped} dropped of {self.read} read in {self.seconds:.1f} s "
            f"({self.fps:.1f} fps); latency ms: {latency}, max {self.latency_ms(100):.0f}{reuse}"
        )
