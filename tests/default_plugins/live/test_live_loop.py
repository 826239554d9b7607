"""The live loop headless: real-time pacing, dropping stale frames, and the keys."""

import os
import signal
import threading
import time

import av
import cv2
import numpy as np
import pytest

from srpipe.default_plugins.live.feed import FrameFeed
from srpipe.default_plugins.live.loop import LiveLoop, signals_held
from srpipe.default_plugins.live.recorder import Recorder
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.default_plugins.live.window import KEY_ESC, Headless
from srpipe.errors import SrpipeError
from srpipe.media import SourceOptions
from srpipe.models import ModelRegistry, ModelSpec
from srpipe.testing import make_test_video
from srpipe.video import PyAVSource

from live_helpers import EndlessSource, ScriptedView, flat_registry

FRAMES, RATE = 50, 25  # a 2 s clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("live") / "clip.mp4", frames=FRAMES, rate=RATE)


def run_file(clip, registry, view=None, **loop_options):
    models = UpscalerCycle(registry, next(iter(registry)).name, 2, "cpu")
    with PyAVSource(str(clip), SourceOptions()) as source:
        loop = LiveLoop(FrameFeed(source, paced=source.is_file), models, view or Headless(), **loop_options)
        return loop.run()


def test_file_plays_at_its_frame_rate_and_every_frame_is_accounted_for(clip):
    stats = run_file(clip, flat_registry(fast=100))
    assert stats.read == FRAMES
    assert stats.shown + stats.dropped == stats.read
    assert stats.seconds >= (FRAMES - 1) / RATE * 0.95  # paced, not as fast as possible
    assert stats.shown >= FRAMES // 2


def test_slow_model_drops_stale_frames_and_latency_stays_bounded(clip):
    delay = 0.12  # three source frames per upscale
    stats = run_file(clip, flat_registry(delay=delay, slow=100))
    assert stats.read == FRAMES and stats.shown + stats.dropped == FRAMES
    assert stats.dropped >= FRAMES // 2
    # A frame waits at most one upscale in the slot, then is upscaled: about 2 * delay.
    # Without dropping, the last frames would wait (FRAMES * delay - clip length), about 4 s; the
    # margins leave room for busy cores.
    assert stats.longest_latency < 2 * delay + 1.0
    assert np.mean(list(stats.recent_latencies)[-5:]) < 2 * delay + 0.5


def model_level(image):
    """The limited-range luma level the model drew on the right half (below the label, above the status line)."""
    height, width = image.shape[:2]
    grey = np.median(image[height // 3: 2 * height // 3, width // 2:])
    return round(16 + grey * 219 / 255)


def endless_loop(view, tmp_path, **levels):
    models = UpscalerCycle(flat_registry(**levels), next(iter(levels)), 2, "cpu")
    messages = []
    loop = LiveLoop(FrameFeed(EndlessSource(), paced=True), models, view, screenshot_dir=tmp_path, echo=messages.append)
    return loop, messages


def test_keys_switch_model_save_screenshot_pause_and_quit(tmp_path):
    keys = [-1, -1, "m", -1, -1, "s", " "] + [-1] * 5 + ["m", -1, -1, " ", -1, -1, "q"]
    view = ScriptedView(keys)
    loop, messages = endless_loop(view, tmp_path, a=50, b=150)
    stats = loop.run()

    assert view.calls == len(keys)  # q ended it at once
    assert stats.shown + stats.dropped == stats.read
    shown_at = dict(view.log)  # images shown before each key call
    assert model_level(view.shown[shown_at[3] - 1]) == pytest.approx(50, abs=2)  # model a, before m
    assert model_level(view.shown[shown_at[4]]) == pytest.approx(150, abs=2)  # the frame after m: model b

    saved = list(tmp_path.glob("srpipe-live-*.png"))
    assert len(saved) == 1 and f"saved {saved[0]}" in messages
    assert np.array_equal(cv2.imread(str(saved[0])), view.shown[shown_at[6] - 1])  # what was on screen

    paused_images = view.shown[shown_at[7]: shown_at[14]]  # pause redraw, m redraw; no new frames
    assert len(paused_images) == 2 and model_level(paused_images[1]) == pytest.approx(50, abs=2)
    assert messages.count("model: b") == 1 and messages.count("model: a") == 1
    assert len(view.shown) > shown_at[14] + 1  # playing again after the second space


def test_escape_quits_and_the_waiting_frame_counts_as_dropped(tmp_path):
    view = ScriptedView([-1, -1, KEY_ESC])
    loop, _ = endless_loop(view, tmp_path, a=50)
    stats = loop.run()
    assert view.calls == 3 and stats.shown + stats.dropped == stats.read


def test_a_second_ctrl_c_as_the_threads_stop_keeps_the_counts(tmp_path):
    """timeout(1) sends its signal twice, and users press Ctrl-C twice: the second landed in the
    wait for the threads to stop, and the summary said '0 read in 0.0 s' of a run that showed frames."""

    class Interrupting(ScriptedView):
        def key(self, wait_ms):
            if super().key(wait_ms) == ord("i"):
                raise KeyboardInterrupt

    loop, _ = endless_loop(Interrupting([-1, -1, -1, "i"]), tmp_path, a=50)
    stop = loop.worker.stop

    def interrupted_stop(wait):
        stop(wait)
        raise KeyboardInterrupt

    loop.worker.stop = interrupted_stop
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert loop.stats.shown > 0 and loop.stats.read >= loop.stats.shown and loop.stats.seconds > 0


def test_cycle_leaves_out_models_that_fail_to_load(tmp_path):
    from srpipe.errors import SrpipeError
    from srpipe.models import ModelSpec

    registry = flat_registry(a=50, c=200)

    def broken(scale, device, weights):
        raise SrpipeError("no weights shipped")

    registry.register(ModelSpec("b", (2,), "broken", broken), plugin="test")
    cycle = UpscalerCycle(registry, "a", 2, "cpu")
    with pytest.warns(UserWarning, match="model 'b' is left out of the cycle: no weights shipped"):
        assert cycle.next() == "c"
    assert cycle.next() == "a" and cycle.names == ["a", "c"]


class SlowView(Headless):
    """A view that takes ``delay`` seconds to show each image, as drawing a large window does."""

    def __init__(self, delay: float):
        self.delay, self.threads = delay, set()

    def show(self, image):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)


def test_the_next_frame_is_upscaled_while_this_one_is_drawn(clip):
    # Upscaling and drawing each take 30 ms of a 40 ms frame period: one after the other they
    # would take 60 ms a frame and show at most two frames in three; side by side, all of them.
    view = SlowView(0.03)
    stats = run_file(clip, flat_registry(delay=0.03, slow=100), view)
    assert stats.read == FRAMES and stats.shown + stats.dropped == FRAMES
    assert stats.shown >= 0.75 * FRAMES  # some dropped on busy cores, more than two in three shown
    assert view.threads == {threading.current_thread().name}  # the loop's thread draws; the worker upscales


class FailingUpscaler:
    scale = 2

    def __init__(self, after: int):
        self.after = after

    def upscale(self, luma, *, bit_depth, full_range):
        self.after -= 1
        if self.after < 0:
            raise SrpipeError("the model broke")
        n, h, w = luma.shape
        return np.full((n, h * 2, w * 2), 100, luma.dtype)


def test_an_error_while_upscaling_stops_the_loop_with_that_error(clip):
    registry = ModelRegistry()
    registry.register(ModelSpec("failing", (2,), "fails", lambda scale, device, weights: FailingUpscaler(3)),
                      plugin="test")
    view = ScriptedView([])
    with pytest.raises(SrpipeError, match="the model broke"):
        run_file(clip, registry, view)
    assert len(view.shown) == 3


def test_ctrl_c_while_a_frame_is_recorded_keeps_that_frame(clip, tmp_path, monkeypatch):
    # Ctrl-C arriving inside the encoder's call (the longest part of a frame) raised there and lost
    # the packets that call returned: the recording lacked a frame the summary counted as shown
    recorder = Recorder(tmp_path / "r.mp4")
    write = recorder._write

    def interrupted_write(image, shown_at):
        if recorder.last_pts >= 0 and not interrupted_write.sent:  # the second frame, and later ones of its packets
            interrupted_write.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        write(image, shown_at)

    interrupted_write.sent = False
    monkeypatch.setattr(recorder, "_write", interrupted_write)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as Python sets it up
    try:
        models = UpscalerCycle(flat_registry(fast=100), "fast", 2, "cpu")
        with PyAVSource(str(clip), SourceOptions()) as source:
            loop = LiveLoop(FrameFeed(source, paced=False), models, Headless(), recorder=recorder)
            with pytest.raises(KeyboardInterrupt):
                loop.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    recorder.finish()
    with av.open(str(tmp_path / "r.mp4")) as recording:
        assert sum(1 for _ in recording.decode(video=0)) == loop.stats.shown == 2


def test_a_second_ctrl_c_is_not_held():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # a recording that blocks (a FIFO nobody reads) can still be stopped
            pytest.fail("the second Ctrl-C was held")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_statistics_of_a_long_run_take_a_fixed_room_and_give_the_same_figures():
    """A camera watched for hours: the statistics kept a value per frame shown (99 MiB in 8 hours)."""
    from srpipe.default_plugins.live.stats import LiveStats

    latencies = np.random.default_rng(4).uniform(0.004, 0.2, 100_000)
    stats = LiveStats()
    room = stats.latency_counts.nbytes
    for index, latency in enumerate(latencies):
        stats.record_shown(arrived=index / 30, shown_at=index / 30 + latency, reused=0.5, deferred=index % 2 / 4)
    assert stats.latency_counts.nbytes == room and len(stats.recent_latencies) == 30
    for percentile in (50, 90, 99):  # to the millisecond they are counted in
        exact = np.percentile(latencies, percentile, method="inverted_cdf") * 1000
        assert abs(stats.latency_ms(percentile) - exact) <= 1, percentile
    assert stats.latency_ms(100) == pytest.approx(latencies.max() * 1000)
    assert (stats.reused.mean, stats.deferred.mean, stats.deferred.largest) == (0.5, 0.125, 0.25)
