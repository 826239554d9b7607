"""Sources, models and views for driving the live loop without a camera or a window."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import numpy as np

from srpipe.default_plugins.live.window import NO_KEY
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import Source
from srpipe.models import ModelRegistry, ModelSpec


def grey_frame(index: int, width: int = 32, height: int = 24) -> Frame:
    y = np.full((height, width), 16 + index % 200, np.uint8)
    c = np.full((height // 2, width // 2), 128, np.uint8)
    return Frame((y, c, c.copy()), PLANE_FORMATS["yuv420p"], False, index, Fraction(1, 100))


class EndlessSource(Source):
    """Frames at 100 fps (timestamps), forever: only a quit key ends a loop over it."""

    def items(self):
        for index in itertools.count():
            yield grey_frame(index)


class FlatUpscaler:
    """Upscales to a flat luma ``level`` after ``delay`` seconds per frame."""

    def __init__(self, scale: int, level: int, delay: float = 0.0):
        self.scale, self.level, self.delay = scale, level, delay

    def upscale(self, luma, *, bit_depth, full_range):
        time.sleep(self.delay * len(luma))
        n, h, w = luma.shape
        return np.full((n, h * self.scale, w * self.scale), self.level, luma.dtype)


def flat_registry(delay: float = 0.0, **levels: int) -> ModelRegistry:
    """Upscalers named after the keyword arguments, each giving its flat level."""
    registry = ModelRegistry()
    for name, level in levels.items():
        load = lambda scale, device, weights, level=level: FlatUpscaler(scale, level, delay)  # noqa: E731
        registry.register(ModelSpec(name, (2,), f"flat {level}", load), plugin="test")
    return registry


class ScriptedView:
    """Returns the scripted keys one per call, then no key; records what is shown.

    More than ``limit`` calls fail the test instead of hanging it.
    """

    frame_timeout_s = 0.05

    def __init__(self, keys, limit: int = 2000):
        self.keys = [ord(k) if isinstance(k, str) else k for k in keys]
        self.calls = 0
        self.limit = limit
        self.shown: list[np.ndarray] = []
        self.log: list[tuple[int, int]] = []  # (call number, number of images shown so far)

    def show(self, image):
        self.shown.append(image)

    def key(self, wait_ms):
        self.calls += 1
        assert self.calls <= self.limit, "the loop did not quit"
        self.log.append((self.calls, len(self.shown)))
        return self.keys[self.calls - 1] if self.calls <= len(self.keys) else NO_KEY
