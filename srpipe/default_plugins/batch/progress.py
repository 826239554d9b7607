"""What ``srpipe batch`` shows while it runs.

The total is counted in frames before the first file starts, from the containers' frame
counts (or their duration times their frame rate; an image is one frame), so that the
estimate of the time left weighs a feature film and a still image for what they cost.

- On a terminal: one bar over the whole batch (frames, percentage, elapsed, time left,
  rate) with the current file and its number (``file 3/120 name.mp4``), and one line per
  finished file above it.
- Elsewhere (a log file, a CI job): no bar; one line per finished file, each with the
  batch's progress and the time left, and a line every minute in between, so that a long
  file still shows signs of life.
- Quiet (``-q``): failed files and files left alone (their output exists), one line each.

File names are shown escaped (:func:`shown`), so that each file stays on one line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from srpipe.cli.progress import shown

HEARTBEAT_SECONDS = 60.0


def estimate_frames(path: Path) -> int:
    """Frames of a video by its header (0 when unknown), 1 for an image; nothing is decoded."""
    from srpipe.media import is_image_file

    if is_image_file(str(path)):
        return 1
    import av

    from srpipe.video import main_video

    try:
        with av.open(str(path)) as container:
            stream = main_video(container)
            if stream is None:
                return 0
            if stream.frames:
                return stream.frames
            rate = stream.average_rate or stream.guessed_rate
            if container.duration and rate:
                return int(container.duration / av.time_base * rate)
    except (av.FFmpegError, OSError, ValueError):
        pass
    return 0


def format_seconds(seconds: float | None) -> str:
    """``1:02:03``, ``2:03``, or ``?`` when not known yet."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BatchProgress:
    """Receives the batch engine's callbacks (``on_plan``, ``on_start``, ``on_frame``,
    ``on_file``) and writes to ``stream`` (standard error)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        if terminal is None:
            try:
                terminal = self.stream.isatty()
            except (AttributeError, ValueError):
                terminal = False
        self.terminal = terminal and not quiet
        self.clock = clock
        self.bar = None
        self.total = 0  # frames, estimated, corrected as files finish
        self.frames = 0
        self.estimates: dict[str, int] = {}  # per input file (its chunks summed)
        # Files run in chunks: their chunks' counts are exact, and what a file had in all may include
        # chunks an earlier, interrupted run made, which this run's count leaves out
        self.chunked: set[str] = set()
        self.file_frames: dict[str, int] = {}  # frames written, counted to the file started last
        self.files = 0  # files to upscale in this run
        self.started: dict[str, int] = {}  # input file -> its number, in the order files start
        self.finished = 0
        self.current: str | None = None
        self.began: float | None = None
        self.last_line = 0.0

    # engine callbacks -------------------------------------------------------------

    def on_plan(self, jobs) -> None:
        """The jobs about to run: the batch's, then those of files upscaled again whole."""
        if self.quiet:
            return
        for job in jobs:
            rel = str(job.rel)
            count = job.chunk.frames if job.chunk is not None else estimate_frames(job.source)
            self.estimates[rel] = self.estimates.get(rel, 0) + count
            if job.chunk is not None:
                self.chunked.add(rel)
            else:  # (a chunked file run again whole: its count is the header's again)
                self.chunked.discard(rel)
        if self.began is not None:  # a file runs again: its frames count twice
            self._set_total(self.total + sum(estimate_frames(job.source) for job in jobs))
            return
        self.files = len(self.estimates)
        self.total = sum(self.estimates.values())
        self.began = self.last_line = self.clock()
        if self.terminal and self.files:
            from tqdm import tqdm

            from srpipe.cli.progress import width_options

            self.bar = tqdm(total=self.total, unit="frame", desc="batch", file=self.stream,
                            **width_options(self.stream),
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                                       "[{elapsed}<{remaining}, {rate_fmt}]{postfix}")

    def on_start(self, job) -> None:
        rel = str(job.rel)
        if rel not in self.started:
            self.started[rel] = len(self.started) + 1
        self.current = rel
        self._show_current()

    def on_frame(self, count: int = 1) -> None:
        self.frames += count
        if self.current is not None:
            self.file_frames[self.current] = self.file_frames.get(self.current, 0) + count
        if self.bar is not None:
            self.bar.update(count)
        elif not self.quiet and not self.terminal and self.files:
            now = self.clock()
            if now - self.last_line >= HEARTBEAT_SECONDS:
                where = f" ({shown(self.current)})" if self.current else ""
                self._line(f"{self._prefix()} working{where}; {self._status()}")

    def on_file(self, result) -> None:
        rel = result.input
        if rel in self.estimates:  # one of this run's files: the total follows what it really had
            self.finished += 1
            estimate = self.estimates.pop(rel)
            if result.status == "done" and rel not in self.chunked:  # (not below what was counted: a file
                # that ran again counts twice)
                self._set_total(max(self.total - estimate + result.frames, self.frames))
            elif result.status == "failed":  # what it wrote before it failed stays counted
                self._set_total(self.total - estimate + min(self.file_frames.get(rel, 0), estimate))
        name, error = shown(rel), shown(result.error or "")
        if result.status == "done":
            frames = f"{result.frames} frame{'s' * (result.frames != 1)}"
            # a stand-in for the model asked, and which of its variants ran (as upscale's summary says)
            ran = "".join(f", {what}" for what in (result.model, result.variant) if what)
            if result.frames_deinterlaced:  # as upscale's summary says it
                ran += f", {result.frames_deinterlaced} deinterlaced"
            text = f"done     {name} -> {shown(result.output)} ({frames}, {result.seconds:.1f} s{ran})"
        else:
            text = {"skipped": f"skipped  {name} ({error or 'already done'})",
                    "exists": f"exists   {name}: {error}",
                    "failed": f"FAILED   {name}: {error}"}[result.status]
        if self.quiet:  # what was not upscaled, and why
            if result.status in ("failed", "exists"):
                self._line(text)
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
            self._show_current()
        elif self.began is not None and (rel in self.started or result.status != "skipped"):
            self._line(f"{self._prefix(self.finished)} {text}; {self._status()}")
        else:  # known before the batch starts: skipped files, outputs in the way, clashing names
            self._line(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.total = self.bar.n  # what was really done
            self.bar.close()
            self.bar = None

    # helpers ----------------------------------------------------------------------

    def _set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def _show_current(self) -> None:
        if self.bar is not None and self.current is not None:
            number = self.started.get(self.current, self.finished + 1)
            self.bar.set_postfix_str(f"file {number}/{self.files} {shown(self.current)}", refresh=True)

    def _prefix(self, number: int | None = None) -> str:
        if number is None:
            number = self.started.get(self.current, self.finished) if self.current else self.finished
        width = len(str(self.files))
        return f"[{number:>{width}}/{self.files}]"

    def _status(self) -> str:
        now = self.clock()
        elapsed = now - (now if self.began is None else self.began)
        total = max(self.total, self.frames)
        percent = 100 * self.frames / total if total else 100.0
        rate = self.frames / elapsed if elapsed > 0 else 0.0
        left = (total - self.frames) / rate if rate > 0 else None
        return (f"batch {self.frames}/{total} frames ({percent:.0f}%), {format_seconds(elapsed)} elapsed, "
                f"{rate:.1f} fps, ETA {format_seconds(left)}")

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        print(text, file=self.stream, flush=True)
