"""The live loop: a worker thread upscales the newest frame; the loop shows it beside the
bicubic upscale and handles keys.

Three threads each do their part of a frame at once: the reader decodes the next frame, the
worker upscales the newest one, and the loop draws and shows the one before. On two cores
the network then no longer waits for the drawing, nor the drawing for the network.

Keys: ``q``/Esc quit, ``m`` next upscaler, ``s`` screenshot, space pause.
The view (:class:`srpipe.default_plugins.live.window.Window` or ``Headless``) gives the keys,
so tests drive the loop with scripted ones.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from srpipe.default_plugins.live.display import annotate, beside_bicubic, side_by_side, turned_halves
from srpipe.default_plugins.live.feed import FrameFeed, SlotThread, TimedFrame
from srpipe.default_plugins.live.recorder import Recorder
from srpipe.default_plugins.live.stats import LiveStats
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.default_plugins.live.window import KEY_ESC
from srpipe.frames import Frame
from srpipe.pipeline import upscale_frames
from srpipe.reuse import TileReuse
from srpipe.video import turn_filters

QUIT_KEYS = {ord("q"), KEY_ESC}
SHOWN_WAIT_MS = 1  # key wait after each frame (also lets highgui draw)
IDLE_WAIT_MS = 5  # key wait when no frame is ready
PAUSED_WAIT_MS = 30
TAKE_TIMEOUT_S = 0.05  # how long the worker waits for a frame before looking whether to stop
STOP_WAIT_S = 5.0  # how long the threads may take to finish what they hold when the loop ends
INTERRUPTED_WAIT_S = 0.5  # ... on Ctrl-C or SIGTERM, where a read stalled in C would hold the exit


@contextlib.contextmanager
def signals_held(signums=(signal.SIGINT, signal.SIGTERM)):
    """Hold Ctrl-C and SIGTERM back until the block ends, then act on the first that came. An
    interrupt raised inside the encoder's call lost the packets that call returned: the recording
    lacked a frame counted as shown. A second signal acts at once (a recording into a FIFO that
    nobody reads can block). Only the main thread gets signals; elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: handler for signum in signums if callable(handler := signal.getsignal(signum))}

    def hold(signum, frame):
        if held:
            previous[signum](signum, frame)
        held.append(signum)

    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        previous[held[0]](held[0], None)


@dataclass
class UpscaledFrame(TimedFrame):
    """A frame with its upscale, and the shares of tiles reused for it and left to later frames
    for want of time (None without reuse)."""

    upscaled: Frame | None = None
    reused: float | None = None
    deferred: float | None = None


class KeepUp:
    """The time the network may take per frame (:attr:`srpipe.reuse.TileReuse.budget_s`), held so
    that the worker's whole frame takes ``TARGET`` of the source's frame interval: after each frame
    the budget moves by part of what the frame took over or under that, which also covers what
    the network's time does not (the chroma, the bookkeeping, the other threads on the cores)."""

    TARGET = 0.85  # of the frame interval: room for the frames that take longer
    GAIN = 0.5
    LOWEST = 0.1  # of the frame interval: the network always gets some time

    def __init__(self):
        self.budget_s: float | None = None

    def budget(self, interval: float | None) -> float | None:
        """The budget for the next frame; None (no limit) while the interval is not known."""
        if interval is not None and self.budget_s is None:
            self.budget_s = self.TARGET * interval / 2
        return self.budget_s if interval is not None else None

    def took(self, seconds: float, interval: float | None) -> None:
        """Learn from a frame that took ``seconds`` in all."""
        if interval is not None and self.budget_s is not None:
            budget = self.budget_s + self.GAIN * (self.TARGET * interval - seconds)
            # At most the target: frames with little to do (a still scene) must not wind it up
            # so far that the next busy one runs late
            self.budget_s = min(max(budget, self.LOWEST * interval), self.TARGET * interval)


class UpscaleWorker(SlotThread):
    """Upscales the newest frame of ``feed`` with the current model of ``models`` in a thread
    of its own, into a one-slot handoff (``slot``: a newer result replaces one not yet shown).
    ``lock`` is held while a frame is upscaled and handed over: a model switch, or a redraw
    of the paused frame, comes between two frames, and no frame of the old model follows a
    switch. While ``paused`` is set, no frame is taken. With ``keep_up``, a network with tile
    reuse is held to the source's frame rate (:class:`KeepUp`): tiles it has no time for wait for
    later frames, and no frame is dropped for it."""

    def __init__(self, feed: FrameFeed, models: UpscalerCycle, keep_up: bool = True):
        super().__init__("srpipe-live-upscale")
        self.feed, self.models = feed, models
        self.keep_up = KeepUp() if keep_up else None
        self.lock = threading.Lock()
        self.paused = threading.Event()

    def _produce(self) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                self._stop.wait(PAUSED_WAIT_MS / 1000)
                continue
            item = self.feed.slot.take(TAKE_TIMEOUT_S)
            if item is None:
                if self.feed.slot.finished:
                    return
                continue
            with self.lock:
                upscaler, interval = self.models.upscaler, self.feed.frame_interval
                budgeted = self.keep_up is not None and isinstance(upscaler, TileReuse)
                if budgeted:
                    upscaler.budget_s = self.keep_up.budget(interval)
                started = time.perf_counter()
                upscaled = upscale_frames([item.frame], upscaler, self.models.name)[0]
                if budgeted:
                    self.keep_up.took(time.perf_counter() - started, interval)
                self.slot.put(UpscaledFrame(item.frame, item.arrived, upscaled, self.models.reused,
                                            self.models.deferred))


class View(Protocol):
    frame_timeout_s: float  # how long the loop waits for a frame before asking for keys

    def show(self, image: np.ndarray) -> None: ...

    def key(self, wait_ms: int) -> int: ...


class LiveLoop:
    """Shows the newest frame of ``feed`` upscaled by the current model of ``models``."""

    def __init__(
        self,
        feed: FrameFeed,
        models: UpscalerCycle,
        view: View,
        *,
        recorder: Recorder | None = None,
        screenshot_dir: Path = Path("."),
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.perf_counter,
        keep_up: bool = True,
    ):
        self.feed = feed
        self.models = models
        self.worker = UpscaleWorker(feed, models, keep_up)
        self.view = view
        self.recorder = recorder
        self.screenshot_dir = Path(screenshot_dir)
        self.echo = echo
        self.clock = clock
        self.stats = LiveStats()
        self.paused = False
        self.quitting = False
        self.frame: Frame | None = None  # the frame on screen, before upscaling
        self.plain: np.ndarray | None = None  # the side-by-side image on screen, without text
        self.shown: np.ndarray | None = None  # what is on screen, text included
        self.reused: float | None = None  # the share of tiles reused for the frame on screen
        self.deferred: float | None = None  # ... and left to later frames for want of time
        self.screenshots = 0
        self.turn: list | None = None  # the filters that show the source as its display matrix says

    def run(self) -> LiveStats:
        """Run until the source ends or a quit key; the statistics are complete even after Ctrl-C."""
        start = self.clock()
        self.feed.start()
        self.worker.start()
        interrupted = False
        try:
            while not self.quitting:
                if self.paused:
                    self.handle_key(self.view.key(PAUSED_WAIT_MS))
                    continue
                item = self.worker.slot.take(self.view.frame_timeout_s)
                if item is not None:
                    self.present(item)
                elif self.worker.slot.finished:
                    break
                self.handle_key(self.view.key(SHOWN_WAIT_MS if item is not None else IDLE_WAIT_MS))
        except BaseException as exc:
            interrupted = not isinstance(exc, Exception)  # Ctrl-C, SIGTERM: end within a second or two
            raise
        finally:
            wait = INTERRUPTED_WAIT_S if interrupted else STOP_WAIT_S
            try:
                self.worker.stop(wait)
                self.feed.stop(wait)
            finally:  # a second Ctrl-C as they stop (timeout(1) sends its signal twice) ends the waits, not the count
                self.stats.read = self.feed.slot.put_count
                self.stats.dropped = self.stats.read - self.stats.shown  # in a handoff, in hand, or being drawn
                self.stats.seconds = self.clock() - start
        return self.stats

    @property
    def dropped(self) -> int:
        """Frames dropped so far: replaced in the reader's handoff or in the worker's."""
        return self.feed.slot.dropped + self.worker.slot.dropped

    def present(self, item: UpscaledFrame) -> None:
        """Show, measure and record one upscaled frame, whole: Ctrl-C and SIGTERM wait for it
        (:func:`signals_held`), so that the recording has every frame the summary counts shown."""
        with signals_held():
            self._present(item)

    def _present(self, item: UpscaledFrame) -> None:
        self.frame, self.reused, self.deferred = item.frame, item.reused, item.deferred
        self.plain = beside_bicubic(item.frame, item.upscaled)
        if self.turn is None:  # the source's display matrix comes with its first frame
            matrix = getattr(self.feed.source, "display_matrix", None)
            self.turn = (turn_filters(matrix) or []) if matrix else []
        if self.turn:  # a phone's video upright, as players show it, on screen and in the recording
            self.plain = turned_halves(self.plain, self.turn)
        self.redraw()
        shown_at = self.clock()
        self.stats.record_shown(item.arrived, shown_at, item.reused, item.deferred)
        if self.recorder is not None:
            self.recorder.write(self.shown, shown_at)

    def redraw(self) -> None:
        """Show the current image with the model names, frame rate, latency and drops drawn on it."""
        latency = self.stats.recent_latencies[-1] * 1000 if self.stats.recent_latencies else 0.0
        status = f"{self.stats.recent_fps:.1f} fps | latency {latency:.0f} ms | dropped {self.dropped}"
        if self.reused is not None:
            status += f" | reused {self.reused:.0%}"
        if self.deferred:
            status += f" | late {self.deferred:.0%}"
        if self.paused:
            status += " | paused"
        self.shown = annotate(self.plain.copy(), self.models.name, self.models.scale, status)
        self.view.show(self.shown)

    def handle_key(self, key: int) -> None:
        if key in QUIT_KEYS:
            self.quitting = True
        elif key == ord("m"):
            with self.worker.lock:  # between two frames
                self.echo(f"model: {self.models.next()}")
                self.worker.slot.discard()  # the old model's frame, if one waits
                if self.paused and self.frame is not None:  # compare models on the paused frame
                    if isinstance(self.models.upscaler, TileReuse):  # all of it: no frame waits for this one
                        self.models.upscaler.budget_s = None
                    self.plain = side_by_side(self.frame, self.models.upscaler, self.models.name)
                    self.reused, self.deferred = self.models.reused, self.models.deferred
                    self.redraw()
        elif key == ord("s"):
            self.save_screenshot()
        elif key == ord(" "):
            self.paused = not self.paused
            if self.paused:
                self.worker.paused.set()
            else:
                self.worker.slot.discard()  # upscaled before the pause: stale
                self.worker.paused.clear()
            if self.plain is not None:
                self.redraw()

    def save_screenshot(self) -> None:
        """Write what is on screen, text included, as a PNG."""
        if self.shown is None:
            self.echo("nothing to save yet")
            return
        self.screenshots += 1
        path = self.screenshot_dir / f"srpipe-live-{time.strftime('%Y%m%d-%H%M%S')}-{self.screenshots}.png"
        _, data = cv2.imencode(".png", self.shown)
        try:
            data.tofile(str(path))
        except OSError as exc:
            self.echo(f"cannot save {path}: {exc.strerror or exc}")
            return
        self.echo(f"saved {path}")
