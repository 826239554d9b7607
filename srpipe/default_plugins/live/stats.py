"""What the live loop measures: frames read, shown and dropped, frame rate and latency."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass
class LiveStats:
    """Counts and end-to-end latencies (seconds from a frame's arrival to its display)."""

    read: int = 0
    shown: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    recent_shows: deque = field(default_factory=lambda: deque(maxlen=30), repr=False)
    reused: list[float] = field(default_factory=list)  # per shown frame with tile reuse: the share reused
    deferred: list[float] = field(default_factory=list)  # ... and the share left to later frames for want of time

    def record_shown(self, arrived: float, shown_at: float, reused: float | None = None,
                     deferred: float | None = None) -> None:
        self.shown += 1
        self.latencies.append(shown_at - arrived)
        self.recent_shows.append(shown_at)
        if reused is not None:
            self.reused.append(reused)
        if deferred is not None:
            self.deferred.append(deferred)

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
        return float(np.percentile(self.latencies, percentile)) * 1000 if self.latencies else 0.0

    def summary(self) -> str:
        latency = ", ".join(f"p{p} {self.latency_ms(p):.0f}" for p in PERCENTILES)
        reuse = f"; {np.mean(self.reused):.0%} of tiles reused" if self.reused else ""
        if self.deferred and np.mean(self.deferred) > 0:
            reuse += f", {np.mean(self.deferred):.0%} late (left to later frames to keep up)"
        return (
            f"{self.shown} frames shown, {self.dropped} dropped of {self.read} read in {self.seconds:.1f} s "
            f"({self.fps:.1f} fps); latency ms: {latency}, max {self.latency_ms(100):.0f}{reuse}"
        )
