"""The streaming pipeline: source -> batched luma upscale + chroma resize -> sink.

``run(..., threaded=True)`` overlaps decoding, the model, the chroma and encoding in four
threads (three for a picture, whose model and chroma share one) joined by bounded queues (a
full queue blocks: lossless backpressure).
``threaded=False`` runs the same steps in one loop; both give identical output.
"""

from __future__ import annotations

import numbers
import queue
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from srpipe.errors import NonFiniteOutput, PluginWarning, SrpipeError
from srpipe.frames import Frame
from srpipe.media import Sink, Source, described, opened_by
from srpipe.memory import check_frame_size, default_max_pixels
from srpipe.models import Upscaler, UpscalerTraits
from srpipe.plugin_guard import PluginExit, exits_as_errors
from srpipe.resize import fill_hidden_colour, resize_chroma, resize_plane, shrink_plane
from srpipe.sizing import SizePlan


def upscale_frames(frames: list[Frame], upscaler: Upscaler, model_name: str = "model") -> list[Frame]:
    """Upscale the luma of same-sized frames as one batch; chroma and alpha bicubic (the colour
    under transparent pixels filled from the visible ones first: :func:`fill_hidden_colour`)."""
    return finish_frames(upscale_luma(frames, upscaler, model_name))


@dataclass
class UpscaledLuma:
    """A batch of frames whose luma the model has upscaled (``luma``, one plane a frame), their
    chroma and alpha still to resize (:func:`finish_frames`)."""

    frames: list[Frame]
    luma: np.ndarray


def upscale_luma(frames: list[Frame], upscaler: Upscaler, model_name: str = "model") -> UpscaledLuma:
    """The model's part of :func:`upscale_frames`: the luma of same-sized frames as one batch."""
    first = frames[0]
    fmt, scale = first.format, upscaler.scale
    frames = [frame if frame.alpha is None else
              frame.with_planes(fill_hidden_colour(frame.planes, frame.alpha, fmt.chroma_shift), frame.alpha)
              for frame in frames]
    luma = np.stack([frame.planes[0] for frame in frames])
    return UpscaledLuma(frames, checked_upscale(upscaler, luma, scale, fmt.bit_depth, first.full_range,
                                                f"model {model_name!r}"))


def finish_frames(batch: UpscaledLuma, sizes: SizePlan | None = None) -> list[Frame]:
    """The rest of :func:`upscale_frames`: the luma resized to ``sizes`` where they ask for
    another size, the chroma and alpha resized to it, the frames put together."""
    frames, big = batch.frames, batch.luma
    first = frames[0]
    fmt = first.format
    if sizes is not None:
        width, height = sizes.size(first.width, first.height, fmt)
        if (width, height) != (big.shape[2], big.shape[1]):
            big = [shrink_plane(y, width, height, fmt.max_value, first.full_range) for y in big]
    out = []
    for frame, y in zip(frames, big):
        height, width = y.shape
        planes = [y]
        if fmt.chroma_shift is not None:
            planes += resize_chroma(frame.planes[1:], (frame.width, frame.height), (width, height), fmt,
                                    first.full_range, first.chroma_siting)
        alpha = None
        if frame.alpha is not None:
            alpha = resize_plane(frame.alpha, width, height, fmt.max_value)
        out.append(frame.with_planes(planes, alpha))
    return out


def checked_upscale(upscaler: Upscaler, luma: np.ndarray, scale: int, bit_depth: int, full_range: bool,
                    who: str) -> np.ndarray:
    """``upscaler.upscale(luma, ...)`` as srpipe can use it, the one check of what an upscaler
    gives (the pipeline's calls, and tile reuse's of the model and of its flat path): refused,
    naming ``who`` (``model 'M'``), unless an array of ``luma``'s dtype and ``scale`` times its
    size; srpipe's own array, or a copy; samples above ``bit_depth``'s largest value clipped, with
    a warning."""
    try:
        with exits_as_errors():
            big = upscaler.upscale(luma, bit_depth=bit_depth, full_range=full_range)
    except NonFiniteOutput as exc:
        backend = UpscalerTraits.of(upscaler).backend
        on = f" on backend {backend}" if backend else ""
        raise SrpipeError(f"{who} is broken{on}: {exc}; check its weights (--weights) or use another "
                          f"{'backend or ' if backend else ''}model") from exc
    count, height, width = luma.shape
    expected = (count, height * scale, width * scale)
    if not isinstance(big, np.ndarray) or big.shape != expected or big.dtype != luma.dtype:
        got = f"{big.dtype} {big.shape}" if isinstance(big, np.ndarray) else type(big).__name__
        raise SrpipeError(f"{who} returned {got}; expected {luma.dtype} {expected}")
    # Frames wait in queues, and sinks may keep them, while the upscaler's next call runs: an array
    # it keeps and fills again (self.buf[...] = out; return self.buf), a slice of one, or a reused
    # torch tensor's .numpy() had every frame in flight show a later picture. Whether it writes the
    # array again cannot be seen after the fact (the frames are overwritten by then), so only an
    # array that owns its memory and that nothing but this function holds is used as it is: a new
    # one, as upscalers make (np.empty, np.stack, astype), costs nothing; any other, a copy. So is
    # a read-only one: samples over the bit depth are clipped in place, and tile reuse writes tiles in.
    if not (big.flags.owndata and big.flags.writeable and sys.getrefcount(big) <= _HELD_ALONE):
        big = big.copy()
    largest = (1 << bit_depth) - 1
    if bit_depth < 8 * big.itemsize and big.max(initial=0) > largest:
        # shown once per run (Python's default warning filter): the encoder would clip anyway
        warnings.warn(f"{who} gave samples above {largest}, the largest {bit_depth}-bit value; they were clipped")
        np.minimum(big, largest, out=big)
    return big


def _held_alone() -> int:
    """What ``sys.getrefcount`` tells of an array that one local variable holds and nothing else
    (whether the call's own argument counts differs between Python versions); 0, so that every
    array is copied, where one more holder does not show (a Python that defers its counts)."""
    array = np.empty(0)
    alone = sys.getrefcount(array)
    held = [array]  # noqa: F841 -- the one more holder
    return alone if sys.getrefcount(array) > alone else 0


_HELD_ALONE = _held_alone()


def _same_layout(a: Frame, b: Frame) -> bool:
    return a.planes[0].shape == b.planes[0].shape and a.format == b.format and a.full_range == b.full_range


# Passthrough items (packets of sound, subtitles) held behind a batch still filling, at most: then the
# batch is upscaled as it is, so that a long stretch of sound without video (a gap, the sound after
# the last frame) does not pile up in memory
HELD_ITEMS = 256


def upscale_stream(items: Iterable, upscaler: Upscaler, batch_size: int, model_name: str = "model") -> Iterator:
    """Frames' luma upscaled in batches (:class:`UpscaledLuma`), in order; passthrough items keep
    their place after the batch that was pending when they arrived (a batch with
    :data:`HELD_ITEMS` of them waiting goes as it is)."""
    frames: list[Frame] = []
    held: list = []

    def flush():
        done = [upscale_luma(frames, upscaler, model_name), *held]
        frames.clear()
        held.clear()
        return done

    for item in items:
        if isinstance(item, Frame):
            if frames and not _same_layout(frames[0], item):
                yield from flush()
            frames.append(item)
            if len(frames) >= batch_size:
                yield from flush()
        elif frames:
            held.append(item)
            if len(held) >= HELD_ITEMS:
                yield from flush()
        else:
            yield item
    if frames:
        yield from flush()


def finished(items: Iterable, sizes: SizePlan | None = None) -> Iterator:
    """The frames of :func:`upscale_stream`'s batches, finished (:func:`finish_frames`), in order,
    and its passthrough items."""
    for item in items:
        if isinstance(item, UpscaledLuma):
            yield from finish_frames(item, sizes)
        else:
            yield item


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()
_POLL_SECONDS = 0.1


def in_thread(items: Iterable, maxsize: int, name: str, stop: threading.Event, workers: list,
              counts: Callable[[object], bool] | None = None, others: int = 0) -> Iterator:
    """Iterate ``items`` in a worker thread, handing them over through a bounded queue: at most
    ``maxsize`` items are handed over and not yet done with (the consumer has not come back for
    the next one). With ``counts``, only the items it counts are held to ``maxsize``, and the
    others to ``others``.

    An exception in the worker is raised again in the consumer. Setting ``stop``
    ends the worker and the consumer; the worker thread is appended to ``workers``
    so that the caller can join it.
    """
    handoff: queue.Queue = queue.Queue()
    room, other_room = threading.Semaphore(maxsize), threading.Semaphore(others)

    def room_for(item) -> threading.Semaphore:
        return room if counts is None or counts(item) else other_room

    def put(item, space: threading.Semaphore | None) -> bool:
        while not stop.is_set():
            if space is None or space.acquire(timeout=_POLL_SECONDS):
                handoff.put(item)
                return True
        return False

    def work():
        try:
            for item in items:
                if not put(item, room_for(item)):
                    return
            put(_END, None)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc), None)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    workers.append(worker)  # only started threads: a signal in between must not make join() fail
    while not stop.is_set():
        try:
            item = handoff.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
        if item is _END:
            return
        if isinstance(item, _Failed):
            raise item.exc
        yield item
        room_for(item).release()  # done with: a model's next batch waits until the last is finished


def tell_skipped_frames(source: Source) -> None:
    """Warn of the damaged frames ``source`` left out (``--on-decode-error skip``), as a run ends:
    upscale's, batch's and live's, from a plugin's source too."""
    if source.skipped_frames:
        count = source.skipped_frames
        warnings.warn(f"{count} damaged frame{'s' * (count != 1)} of {source.location} "
                      f"{'were' if count != 1 else 'was'} skipped")


@dataclass
class RunStats:
    frames_in: int = 0
    frames_out: int = 0
    frames_skipped: int = 0  # damaged input frames dropped on request
    frames_concealed: int = 0  # damaged input frames the decoder mended and passed on
    frames_deinterlaced: int = 0  # interlaced input frames made progressive
    packets_copied: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds else 0.0


def check_frame(frame: Frame, previous: Frame | None, source: Source, max_pixels: int) -> None:
    """Refuse a malformed frame from a source (a plugin's, say) with a message naming it, as
    model output is checked: the planes its pixel format needs; a size within ``max_pixels`` and,
    from a plugin's source that declares its size, that size (the first frame) or less (srpipe
    checked the limit and planned memory by it); timestamps that are whole numbers of a time base,
    increasing."""
    fmt = frame.format
    where = described(source)
    count = 1 if fmt.chroma_shift is None else 3
    if len(frame.planes) != count:
        raise SrpipeError(f"{where} gave a {fmt.name} frame of {len(frame.planes)} planes instead of {count}; "
                          "the plugin that reads it is broken")
    luma = frame.planes[0]  # the frame's size is read from it
    if not isinstance(luma, np.ndarray) or luma.ndim != 2:
        got = f"{luma.dtype} {luma.shape}" if isinstance(luma, np.ndarray) else type(luma).__name__
        raise SrpipeError(f"{where} gave a {fmt.name} frame whose plane 0 is {got}, not a 2-D {fmt.dtype} array; "
                          "the plugin that reads it is broken")
    for index, plane in enumerate(frame.planes):
        expected = (frame.height, frame.width) if index == 0 else fmt.chroma_size(frame.width, frame.height)[::-1]
        if not isinstance(plane, np.ndarray) or plane.dtype != fmt.dtype or plane.shape != expected:
            got = f"{plane.dtype} {plane.shape}" if isinstance(plane, np.ndarray) else type(plane).__name__
            raise SrpipeError(f"{where} gave a {fmt.name} frame whose plane {index} is {got}, not "
                              f"{fmt.dtype} {expected}; the plugin that reads it is broken")
    # A plugin's only: srpipe's own reader declares its header's size, the last its probe saw, which the first
    # frame may not have
    if opened_by(source) and source.width and source.height and (
            frame.width > source.width or frame.height > source.height
            or previous is None and (frame.width, frame.height) != (source.width, source.height)):
        raise SrpipeError(f"{where} declared {source.width}x{source.height} frames but gave a "
                          f"{frame.width}x{frame.height} one; the plugin that reads it is broken")
    # srpipe's own reader is the user's file, named as the check before decoding names it
    check_frame_size(where if opened_by(source) else source.location, frame.width, frame.height, max_pixels)
    units = [("a frame with time_base", frame.time_base)]
    if previous is None:  # the source's own, once
        units += [("as its time_base", source.time_base), ("as its frame_rate", source.frame_rate)]
    for what, unit in units:
        if unit is not None and (not isinstance(unit, numbers.Rational) or unit <= 0):
            raise SrpipeError(f"{where} gave {what} {unit!r}, not a positive fractions.Fraction; the plugin that "
                              "reads it is broken")
    time_base = frame.time_base or source.time_base  # a frame that gives none is timed in the source's
    if frame.pts is not None and (not isinstance(frame.pts, numbers.Integral) or time_base is None):
        raise SrpipeError(f"{where} gave a frame with timestamp {frame.pts!r} in time_base {time_base!r}; a "
                          "timestamp is a whole number of time_base units (the frame's, else the source's); the plugin "
                          "that reads it is broken")
    if previous is not None and (previous.pts is None) != (frame.pts is None) or (
            previous is not None and frame.pts is not None and frame.pts <= previous.pts):
        raise SrpipeError(f"{where} gave a frame with timestamp {frame.pts} after {previous.pts}; timestamps must "
                          "increase (or all be None); the plugin that reads it is broken")


def _counting(items: Iterable, stats: RunStats, source: Source, max_pixels: int) -> Iterator:
    previous = None
    with exits_as_errors():  # items: the source's code
        for item in items:
            if isinstance(item, Frame):
                check_frame(item, previous, source, max_pixels)
                previous = item
                stats.frames_in += 1
            yield item


def abort_sink(sink: Sink) -> None:
    """``sink.abort()`` after a failure: one of a plugin's that fails too is warned of, and the
    failure that came first is the one raised, not this."""
    try:
        with exits_as_errors():
            sink.abort()
    except Exception as exc:
        told = exc.__cause__ if isinstance(exc, PluginExit) else exc
        warnings.warn(f"{described(sink)} could not remove what it had written: {type(told).__name__}: {told}",
                      PluginWarning)


def run(
    source: Source,
    sink: Sink,
    upscaler: Upscaler,
    *,
    batch_size: int = 8,
    threaded: bool = True,
    model_name: str = "model",
    on_frame: Callable[[], None] | None = None,
    sizes: SizePlan | None = None,
    max_pixels: int | None = None,
) -> RunStats:
    """Stream every frame of ``source`` through ``upscaler`` into ``sink`` (``sizes``: resized
    to a fractional scale or a target size, see :func:`upscale_frames`); a frame over
    ``max_pixels`` (None: :func:`srpipe.memory.default_max_pixels`) is refused (:func:`check_frame`).

    The sink is finished on success and aborted (nothing left behind) on any error.
    """
    stats = RunStats()
    start = time.perf_counter()
    queue_size = 2 * batch_size
    stop, workers = threading.Event(), []
    interrupted = False
    try:
        limit = default_max_pixels() if max_pixels is None else max_pixels
        items = _counting(source.items(), stats, source, limit)
        if threaded:
            items = in_thread(items, queue_size, "srpipe-decode", stop, workers)
        upscaled = upscale_stream(items, upscaler, batch_size, model_name)
        # A video's model thread hands each batch to one that resizes the chroma, so that the model (a
        # GPU's, waited for without the GIL) works on the next batch while the chroma of the last is
        # resized. A picture, one frame, keeps both in one thread (its memory plan counts three:
        # ImageSource.memory_needed).
        colour_apart = threaded and source.kind != "image"
        if colour_apart:  # a batch at a time, and as many packets of sound and subtitles as a batch may hold back
            upscaled = in_thread(upscaled, 1, "srpipe-upscale", stop, workers,
                                 counts=lambda item: isinstance(item, UpscaledLuma), others=HELD_ITEMS)
        upscaled = finished(upscaled, sizes)
        if threaded:
            upscaled = in_thread(upscaled, queue_size, "srpipe-colour" if colour_apart else "srpipe-upscale",
                                 stop, workers)
        for item in upscaled:
            if isinstance(item, Frame):
                with exits_as_errors():  # the sink's code
                    sink.write_frame(item)
                stats.frames_out += 1
                if on_frame is not None:
                    on_frame()
            else:
                with exits_as_errors():
                    sink.write_packet(item)
                stats.packets_copied += 1
        if stats.frames_in != stats.frames_out:
            raise SrpipeError(f"{stats.frames_in} frames decoded but {stats.frames_out} encoded")
        stats.frames_skipped = source.skipped_frames
        tell_skipped_frames(source)
        stats.frames_concealed = source.concealed_frames
        stats.frames_deinterlaced = source.deinterlaced_frames
        with exits_as_errors():
            sink.finish()
    except BaseException as exc:
        interrupted = not isinstance(exc, Exception)  # Ctrl-C, SIGTERM: end within a second or two
        abort_sink(sink)
        raise
    finally:
        stop.set()  # ends every worker, whatever happened; the source is closed after this
        # A worker blocked in C (a stalled read, a long model call) cannot see ``stop``; on an
        # interrupt it is left to the process's exit rather than waited for.
        deadline = time.monotonic() + (0.5 if interrupted else 10)
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
    stats.seconds = time.perf_counter() - start
    return stats
