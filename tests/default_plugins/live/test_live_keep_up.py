"""Keeping up with the source (``srpipe live``, default ``--keep-up``): a network with tile reuse
is held to the frame interval, the tiles it has no time for wait for later frames; with
``--drop-frames`` it runs on every tile and frames drop instead."""

import time
from fractions import Fraction

import numpy as np
import pytest

from srpipe.default_plugins.live.feed import SHORTEST_INTERVAL_S, FrameFeed
from srpipe.default_plugins.live.loop import KeepUp, LiveLoop
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.default_plugins.live.window import Headless
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import Source
from srpipe.models import ModelRegistry, ModelSpec
from srpipe.reuse import TileReuse

from conftest import run_srpipe
from live_helpers import EndlessSource, flat_registry

RATE = 25


class TexturedSource(Source):
    """``count`` frames of new noise, 320x240 (six blocks of tile reuse), at ``RATE`` fps by their
    timestamps."""

    width, height = 320, 240

    def __init__(self, count: int):
        self.count = count

    def items(self):
        rng = np.random.default_rng(0)
        for index in range(self.count):
            y = rng.integers(16, 236, (self.height, self.width), dtype=np.uint8)
            c = np.full((self.height // 2, self.width // 2), 128, np.uint8)
            yield Frame((y, c, c.copy()), PLANE_FORMATS["yuv420p"], False, index, Fraction(1, RATE))


class Nearest:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(2, axis=1).repeat(2, axis=2)


class SlowLocal(Nearest):
    """A network-like upscaler that declares its receptive radius and a flat path, and takes
    three source frame intervals for a whole frame (in proportion to the pixels it is given)."""

    receptive_radius = 3
    flat_path = Nearest()

    def upscale(self, luma, *, bit_depth, full_range):
        time.sleep(3 / RATE * luma[0].size / (TexturedSource.width * TexturedSource.height))
        return super().upscale(luma, bit_depth=bit_depth, full_range=full_range)


def slow_registry() -> ModelRegistry:
    registry = ModelRegistry()
    registry.register(ModelSpec("slow", (2,), "slow local", lambda scale, device, weights: SlowLocal()),
                      plugin="test")
    return registry


def run(keep_up: bool, frames: int = 30):
    models = UpscalerCycle(slow_registry(), "slow", 2, "cpu")
    assert isinstance(models.upscaler, TileReuse)
    loop = LiveLoop(FrameFeed(TexturedSource(frames), paced=True), models, Headless(), keep_up=keep_up)
    return loop.run(), models.upscaler


def test_keep_up_holds_the_network_to_the_frame_interval_and_leaves_tiles_for_later():
    stats, upscaler = run(keep_up=True)
    assert upscaler.budget_s is not None and upscaler.budget_s <= KeepUp.TARGET * 1.1 / RATE  # as measured
    assert stats.deferred.largest > 0.5  # a whole frame takes three intervals: most tiles wait
    assert "late (left to later frames to keep up)" in stats.summary()


def test_drop_frames_runs_the_network_on_every_tile():
    stats, upscaler = run(keep_up=False)
    assert upscaler.budget_s is None
    assert stats.deferred.count and stats.deferred.largest == 0
    assert "late (left" not in stats.summary()


def test_the_budget_follows_what_frames_take():
    keep_up, interval = KeepUp(), 1 / 30
    assert keep_up.budget(None) is None  # the rate is not known yet: no limit
    first = keep_up.budget(interval)
    assert first == pytest.approx(KeepUp.TARGET * interval / 2)
    for _ in range(20):  # frames that take two intervals: the budget falls to its floor
        keep_up.took(2 * interval, interval)
    assert keep_up.budget(interval) == pytest.approx(KeepUp.LOWEST * interval)
    for _ in range(50):  # frames that take nothing (a still scene): it rises, to the target at most
        keep_up.took(0.0, interval)
    assert keep_up.budget(interval) == pytest.approx(KeepUp.TARGET * interval)
    for _ in range(50):  # frames whose time outside the network is a fifth of the interval
        keep_up.took(keep_up.budget(interval) + interval / 5, interval)
    assert keep_up.budget(interval) == pytest.approx((KeepUp.TARGET - 0.2) * interval, rel=1e-3)


class Untimed(EndlessSource):
    """Frames without timestamps (a plugin's source may give none): taken as they come."""

    def items(self):
        for item in super().items():
            item.pts = None
            yield item


def test_the_frame_interval_is_measured_from_the_frames_as_they_come():
    paced = FrameFeed(TexturedSource(12), paced=True)
    assert paced.frame_interval is None
    paced.start()
    while not paced.slot.finished:
        paced.slot.take(0.05)
    assert 0.5 / RATE < paced.frame_interval < 2 / RATE
    paced.stop()
    unpaced = FrameFeed(Untimed(), paced=False)  # no timestamps, as fast as it decodes: taken as 120 fps
    unpaced.start()
    deadline = time.monotonic() + 20
    while unpaced.frame_interval is None and time.monotonic() < deadline:  # two frames in
        time.sleep(0.01)
    unpaced.stop()
    assert unpaced.frame_interval == SHORTEST_INTERVAL_S


def test_the_command_takes_drop_frames(tmp_path):
    from srpipe.testing import make_test_video

    clip = make_test_video(tmp_path / "clip.mp4", frames=10, rate=25)
    done = run_srpipe("live", "--source", clip, "--no-window", "-m", "bicubic", "--drop-frames")
    assert done.returncode == 0, done.stderr.decode()
    assert b"frames shown" in done.stderr
    helped = run_srpipe("live", "--help")
    assert b"--keep-up / --drop-frames" in helped.stdout


def test_a_source_that_delivers_in_bursts_keeps_its_rate():
    """Three frames at once every 0.1 s (some network streams and cameras): 30 fps, not 120."""
    times = [burst * 0.1 + within * 0.001 for burst in range(10) for within in range(3)]
    now = iter(times)

    class Bursty(Untimed):
        def items(self):
            for _, item in zip(times, super().items()):
                yield item

    feed = FrameFeed(Bursty(), paced=False, clock=lambda: next(now))
    feed.start()
    while not feed.slot.finished:
        feed.slot.take(0.05)
    feed.stop()
    assert feed.frame_interval == pytest.approx((times[-1] - times[0]) / (len(times) - 1))  # 0.031 s, not 0.001


def test_a_live_stream_that_comes_in_bursts_is_shown_at_its_frame_rate():
    """A live HLS playlist's segments arrive whole (UDP's datagrams too): every frame of a burst
    but the last was replaced before the model saw it, 31 of 225 shown with bicubic. A live
    stream's frames are now released at their times' spacing, the schedule moving with the stream."""

    class Segments(Source):  # 5 segments of 10 frames at 25 fps, each arriving at once, 0.4 s apart
        width, height, frame_rate = 32, 24, Fraction(RATE)

        def items(self):
            for index in range(50):
                if index and index % 10 == 0:
                    time.sleep(0.4)
                y = np.full((24, 32), 16 + index, np.uint8)
                c = np.full((12, 16), 128, np.uint8)
                yield Frame((y, c, c.copy()), PLANE_FORMATS["yuv420p"], False, index, Fraction(1, RATE))

    models = UpscalerCycle(flat_registry(fast=100), "fast", 2, "cpu")
    stats = LiveLoop(FrameFeed(Segments(), paced=False), models, Headless()).run()
    assert stats.read == 50 and stats.shown >= 45, stats.summary()
