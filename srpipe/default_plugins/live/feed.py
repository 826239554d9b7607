"""The reader thread and the one-slot handoff that keeps only the newest frame."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from srpipe.frames import Frame
from srpipe.media import Source, opened_by
from srpipe.memory import default_max_pixels
from srpipe.pipeline import check_frame
from srpipe.plugin_guard import exits_as_errors

# Frames that come faster than this (a source read as fast as it decodes) are paced as if at 120 fps
SHORTEST_INTERVAL_S = 1 / 120
# A live stream's frames that come this far ahead of their times are a jump in them, not a burst
LONGEST_BURST_S = 10


@dataclass
class TimedFrame:
    """A frame and the clock time it became available (the start of its latency)."""

    frame: Frame
    arrived: float


class LatestFrame:
    """Holds at most one frame: putting a new one replaces (and counts as dropped) the one waiting."""

    def __init__(self):
        self._condition = threading.Condition()
        self._item: TimedFrame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, item: TimedFrame) -> None:
        with self._condition:
            self.put_count += 1
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._condition.notify()

    def end(self, error: BaseException | None = None) -> None:
        """No more frames will come; ``error`` is raised by :meth:`take` once the slot is empty."""
        with self._condition:
            self._ended, self._error = True, error
            self._condition.notify()

    def take(self, timeout: float) -> TimedFrame | None:
        """The newest frame, or ``None`` if none came within ``timeout`` seconds."""
        with self._condition:
            if self._item is None and not self._ended:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            if item is None and self._error is not None:
                raise self._error
            return item

    def discard(self) -> None:
        """Drop the waiting frame, if any (the loop is quitting)."""
        with self._condition:
            if self._item is not None:
                self.dropped += 1
                self._item = None

    @property
    def finished(self) -> bool:
        """The reader has ended and the last frame was taken."""
        with self._condition:
            return self._ended and self._item is None


class SlotThread:
    """A thread that fills a one-slot handoff (``slot``) by :meth:`_produce` until that returns
    or :meth:`stop` is called; an error it raises is raised again by ``slot.take``."""

    def __init__(self, name: str):
        self.slot = LatestFrame()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop and wait for the thread, at most ``wait`` seconds (the item in hand is finished
        first; a read blocked in C, on a stalled stream, is left to the process's exit)."""
        self._stop.set()
        self._thread.join(timeout=wait)

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:  # raised again by slot.take, in the loop
            self.slot.end(exc)
        else:
            self.slot.end()

    def _produce(self) -> None:
        raise NotImplementedError


class FrameFeed(SlotThread):
    """Reads ``source`` in a thread into a :class:`LatestFrame`.

    Frames are released at their timestamps. With ``paced`` (a recording), on one schedule: a
    file plays at its real frame rate, like a camera, and catches up after a slow stretch.
    Otherwise (a live stream) the schedule moves with the stream: a frame that comes late is
    released at once and the frames after it keep their spacing from it, and one that comes more
    than :data:`LONGEST_BURST_S` early starts a new schedule (a jump in its times). A burst (an
    HLS segment that arrives whole, UDP's datagrams) is so spread over its time, where the frames
    of each burst but the last were replaced unseen. A source without timestamps is taken as it
    comes.
    """

    def __init__(self, source: Source, paced: bool, clock: Callable[[], float] = time.perf_counter,
                 max_pixels: int | None = None):
        super().__init__("srpipe-live-read")
        self.source = source
        self.paced = paced
        self.clock = clock
        self.max_pixels = default_max_pixels() if max_pixels is None else max_pixels
        # A third-party plugin's source has its frames checked (sizes, planes, timestamps); srpipe's
        # own cameras stamp frames as they come, which a driver's burst may give one time
        self.checked = opened_by(source) is not None
        self._arrivals: deque[float] = deque(maxlen=31)

    @property
    def frame_interval(self) -> float | None:
        """Seconds between frames as they came lately (the mean over the last 30 intervals: a
        stream that delivers frames in bursts keeps its rate), at least :data:`SHORTEST_INTERVAL_S`;
        None before two frames."""
        arrivals = list(self._arrivals)
        if len(arrivals) < 2:
            return None
        return max((arrivals[-1] - arrivals[0]) / (len(arrivals) - 1), SHORTEST_INTERVAL_S)

    def stop(self, wait: float = 5.0) -> None:
        """Stop reading and wait for the thread; the waiting frame counts as dropped."""
        super().stop(wait)
        self.slot.discard()

    def _produce(self) -> None:
        start = first = previous = None
        with exits_as_errors():  # items: the source's code
            for item in self.source.items():
                if self._stop.is_set():
                    break
                if not isinstance(item, Frame):
                    continue  # audio and subtitle packets
                if self.checked:  # as srpipe upscale refuses them
                    check_frame(item, previous, self.source, self.max_pixels)
                    previous = item
                if item.pts is not None and item.time_base is not None:
                    if start is None:
                        start, first = self.clock(), item.pts
                    delay = start + float((item.pts - first) * item.time_base) - self.clock()
                    if not self.paced and not 0 <= delay <= LONGEST_BURST_S:  # late, or a jump: from now on
                        start, delay = start - delay, 0.0
                    if delay > 0 and self._stop.wait(delay):
                        break
                arrived = self.clock()
                self.slot.put(TimedFrame(item, arrived))
                self._arrivals.append(arrived)
