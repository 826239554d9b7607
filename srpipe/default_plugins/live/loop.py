"""The live loop: take the newest frame, upscale it, show it, handle keys.

Keys: ``q``/Esc quit, ``m`` next upscaler, ``s`` screenshot, space pause.
The view (:class:`srpipe.default_plugins.live.window.Window` or ``Headless``) gives the keys,
so tests drive the loop with scripted ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from srpipe.default_plugins.live.display import annotate, side_by_side
from srpipe.default_plugins.live.feed import FrameFeed, TimedFrame
from srpipe.default_plugins.live.recorder import Recorder
from srpipe.default_plugins.live.stats import LiveStats
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.default_plugins.live.window import KEY_ESC
from srpipe.frames import Frame

QUIT_KEYS = {ord("q"), KEY_ESC}
SHOWN_WAIT_MS = 1  # key wait after each frame (also lets highgui draw)
IDLE_WAIT_MS = 5  # key wait when no frame is ready
PAUSED_WAIT_MS = 30


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
    ):
        self.feed = feed
        self.models = models
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
        self.screenshots = 0
        self.presenting = False  # a frame was taken and is not shown yet (Ctrl-C may land here)

    def run(self) -> LiveStats:
        """Run until the source ends or a quit key; the statistics are complete even after Ctrl-C."""
        start = self.clock()
        self.feed.start()
        try:
            while not self.quitting:
                if self.paused:
                    self.handle_key(self.view.key(PAUSED_WAIT_MS))
                    continue
                item = self.feed.slot.take(self.view.frame_timeout_s)
                if item is not None:
                    self.presenting = True
                    self.present(item)
                elif self.feed.slot.finished:
                    break
                self.handle_key(self.view.key(SHOWN_WAIT_MS if item is not None else IDLE_WAIT_MS))
        finally:
            self.feed.stop()
            self.stats.read = self.feed.slot.put_count
            self.stats.dropped = self.feed.slot.dropped + int(self.presenting)
            self.stats.seconds = self.clock() - start
        return self.stats

    def present(self, item: TimedFrame) -> None:
        """Upscale, show, measure and record one frame."""
        self.frame = item.frame
        self.plain = side_by_side(item.frame, self.models.upscaler, self.models.name)
        self.redraw()
        shown_at = self.clock()
        self.stats.record_shown(item.arrived, shown_at, self.models.reused)
        self.presenting = False
        if self.recorder is not None:
            self.recorder.write(self.shown, shown_at)

    def redraw(self) -> None:
        """Show the current image with the model names, frame rate, latency and drops drawn on it."""
        latency = self.stats.latencies[-1] * 1000 if self.stats.latencies else 0.0
        status = f"{self.stats.recent_fps:.1f} fps | latency {latency:.0f} ms | dropped {self.feed.slot.dropped}"
        if self.models.reused is not None:
            status += f" | reused {self.models.reused:.0%}"
        if self.paused:
            status += " | paused"
        self.shown = annotate(self.plain.copy(), self.models.name, self.models.scale, status)
        self.view.show(self.shown)

    def handle_key(self, key: int) -> None:
        if key in QUIT_KEYS:
            self.quitting = True
        elif key == ord("m"):
            self.echo(f"model: {self.models.next()}")
            if self.paused and self.frame is not None:  # compare models on the paused frame
                self.plain = side_by_side(self.frame, self.models.upscaler, self.models.name)
                self.redraw()
        elif key == ord("s"):
            self.save_screenshot()
        elif key == ord(" "):
            self.paused = not self.paused
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
