"""The input of a temporal ESPCN (``ESPCNConfig.frames`` above 1): each frame with the frames
before it, aligned to it, stacked oldest first.

Alignment follows the whole picture only (a pan, a scrolled page, a shaking hand): the shift
between consecutive frames is measured by phase correlation and applied in whole pixels, so
what the network sees of an earlier frame is its own samples, moved. Sub-pixel offsets and
what moves inside the picture are left to the network, which is trained on misaligned
neighbours too, and so learns to use an earlier frame only where it matches. Where there is no
earlier frame (the first frame, a new size), the oldest there is stands in, as in training.

Training (:mod:`srpipe.default_plugins.espcn.data`) and inference (:class:`TemporalWindow`)
build the stacks with the same functions.
"""

from __future__ import annotations

import numpy as np

from srpipe.reuse import CORRELATED, measure_shift

MIN_RESPONSE = 0.05  # below this the correlation peak is noise: the frames are taken as unmoved


def global_shift(previous: np.ndarray, current: np.ndarray) -> tuple[int, int]:
    """The whole-pixel ``(dy, dx)`` by which the picture moved from ``previous`` to ``current``
    (same-sized planes; :func:`srpipe.reuse.measure_shift`), or ``(0, 0)`` where the frames are
    too small or too unlike to tell."""
    size_y, size_x = (min(n, CORRELATED) for n in current.shape)
    if min(size_y, size_x) < 16:
        return 0, 0
    dy, dx, response = measure_shift(previous, current)
    if not np.isfinite(response) or response < MIN_RESPONSE:
        return 0, 0
    if abs(dy) > size_y // 4 or abs(dx) > size_x // 4:  # beyond what a quarter-overlap measures reliably
        return 0, 0
    return dy, dx


def shifted(plane: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``plane`` moved by ``(dy, dx)`` whole pixels, the edges replicated into what comes in."""
    if dy == 0 and dx == 0:
        return plane
    h, w = plane.shape[-2:]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return plane[..., rows[:, None], cols[None, :]]


def stack_clip(frames: np.ndarray, count: int) -> np.ndarray:
    """(N, H, W) consecutive frames of one clip -> (N, count, H, W), as :class:`TemporalWindow` gives them."""
    return TemporalWindow(count).stacks(frames)


class TemporalWindow:
    """The frames a temporal network reads, kept across calls: :meth:`stacks` takes the next
    frames of a stream and gives each after its ``count - 1`` predecessors, each aligned to it.
    A frame of another size or type starts the window again."""

    def __init__(self, count: int):
        self.count = count
        # The last ``count`` frames, oldest first, each with its position: the sum of the
        # shifts (global_shift) from the window's first frame to it.
        self._kept: list[tuple[np.ndarray, tuple[int, int]]] = []

    def stacks(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty((len(frames), self.count, *frames.shape[1:]), frames.dtype)
        for i, frame in enumerate(frames):
            if self._kept and (self._kept[-1][0].shape != frame.shape or self._kept[-1][0].dtype != frame.dtype):
                self._kept = []
            position = (0, 0)
            if self._kept:
                last, (y, x) = self._kept[-1]
                dy, dx = global_shift(last, frame)
                position = (y + dy, x + dx)
            self._kept = (self._kept + [(frame, position)])[-self.count:]
            window = [self._kept[0]] * (self.count - len(self._kept)) + self._kept
            for k, (plane, (y, x)) in enumerate(window):
                out[i, k] = shifted(plane, position[0] - y, position[1] - x)
        return out
