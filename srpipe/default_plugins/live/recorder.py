"""``--record``: what the window shows, written to a video file as it is shown."""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from srpipe.errors import SrpipeError
from srpipe.outputs import AtomicOutput
from srpipe.video import (
    StreamedFile,
    add_video_encoder,
    check_video_encoder,
    default_codec,
    encoder_refusal,
    ffmpeg_errors,
    scheduling_kept,
    streamed_format,
    tag_video_stream,
    write_error,
)

HINT = "check --codec, --crf, --preset"  # what sets up the recording's encoder

# libvpx as a live encoder: each frame out as it comes in (its default looks 25 frames ahead, and
# took seconds to finish a recording) at its fastest setting, as x264's ultrafast is for H.264
REALTIME_VPX = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
TIME_BASE = Fraction(1, 1000)  # milliseconds: frames are timed by when they were shown
BT709 = (Colorspace.ITU709.value,) * 3  # matrix, primaries and transfer: what a screen shows


# What the recording is written as, the first its encoder takes (ProRes takes no 4:2:0)
RECORDED_FORMATS = ("yuv420p", "yuv422p", "yuv444p", "yuv422p10le", "yuv444p10le")


def _recorded_format(stream) -> str:
    """The first of :data:`RECORDED_FORMATS` the stream's encoder takes (4:2:0 where it lists none)."""
    taken = {fmt.name for fmt in stream.codec_context.codec.video_formats or ()}
    return next((fmt for fmt in RECORDED_FORMATS if fmt in taken), "yuv420p") if taken else "yuv420p"


class Recorder:
    """Encodes BGR images with the times they were shown (variable frame rate), by default with
    x264's fastest preset: the encoder runs in the drawing thread, on the cores the model uses.

    The file appears under its name only on :meth:`finish`; :meth:`abort` removes it. The
    caller checks ``path`` first (``check_output``, against the source: :func:`run_live`).
    Odd sizes lose their last row or column (4:2:0 needs even sizes). It is 4:2:0 but where the
    encoder takes none (ProRes: 4:2:2).
    """

    def __init__(self, path: Path, overwrite: bool = False, codec: str | None = None, crf: int | None = 18,
                 preset: str | None = "ultrafast", rate: Fraction | None = None):
        self.path = Path(path)
        self.settings = (codec, crf, preset)  # as srpipe upscale's --codec, --crf, --preset
        self.rate = rate or Fraction(30)  # the source's frame rate: an AVI's, which counts in frames
        if codec is not None:
            check_video_encoder(codec)
        self.output = AtomicOutput(self.path, overwrite)
        self.file = None  # a FIFO or device, opened here: as srpipe upscale writes them
        try:
            if self.output.direct:
                fmt = streamed_format(str(self.path), None, "a .mkv or .ts name")
                self.file = StreamedFile(self.output.temp)
                self.container = av.open(self.file, mode="w", format=fmt)
            else:
                self.container = av.open(str(self.output.temp), mode="w")
        except (av.FFmpegError, ValueError) as exc:
            self.output.discard()
            raise SrpipeError(f"cannot record to {self.path}: {exc}; use a .mp4 or .mkv name") from exc
        self.stream = None
        self.first_time: float | None = None
        self.last_pts = -1
        self.failed = False  # a write failed: the file is not worth keeping
        self._warned_size = False

    def _open_stream(self, width: int, height: int) -> None:
        codec, crf, preset = self.settings
        codec = codec or default_codec(self.container.format.name.split(",")[0])
        self.stream = add_video_encoder(self.container, codec, rate=self.rate, time_base=TIME_BASE, crf=crf,
                                        preset=preset)
        if codec in ("libvpx", "libvpx-vp9"):  # x264's presets are not theirs: their own settings to keep up
            self.stream.options = {**REALTIME_VPX, **self.stream.options}
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, _recorded_format(self.stream)
        tag_video_stream(self.stream, full_range=False, colour=BT709, display_matrix=None)
        with ffmpeg_errors() as logs, scheduling_kept():  # the encoder's own reason, if it refuses
            try:
                self.container.start_encoding()
            except av.FFmpegError as exc:
                raise encoder_refusal(self.stream, exc, logs, HINT) from exc

    def write(self, image: np.ndarray, shown_at: float) -> None:
        """Add one shown BGR image; ``shown_at`` is a clock time in seconds."""
        try:
            self._write(image, shown_at)
        except Exception:  # not Ctrl-C or SIGTERM, which land here most often: what was written is whole
            self.failed = True
            raise

    def _write(self, image: np.ndarray, shown_at: float) -> None:
        image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
        if self.stream is None:
            self._open_stream(image.shape[1], image.shape[0])
            self.first_time = shown_at
        elif (image.shape[1], image.shape[0]) != (self.stream.width, self.stream.height) and not self._warned_size:
            self._warned_size = True
            warnings.warn(f"the source changed size: {self.path} keeps its first size, "
                          f"{self.stream.width}x{self.stream.height}, and what is shown at "
                          f"{image.shape[1]}x{image.shape[0]} is resized to it")
        # in the encoder's time base: milliseconds, or a frame's where it counts in frames (AVI)
        time_base = Fraction(self.stream.codec_context.time_base)
        pts = max(self.last_pts + 1, round((shown_at - self.first_time) / time_base))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24").reformat(
            format=self.stream.pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
        frame.pts, frame.time_base = pts, time_base
        self.last_pts = pts
        try:
            packets = self.stream.encode(frame)
        except av.FFmpegError as exc:
            raise encoder_refusal(self.stream, exc, hint=HINT) from exc
        self._mux(packets)

    def _mux(self, packets) -> None:
        try:
            self.container.mux(packets)
        except (OSError, av.FFmpegError) as exc:
            if self.file is not None and self.file.interrupted:  # Ctrl-C in a write to a FIFO
                raise self.file.interrupted from None
            raise write_error(str(self.path), exc) from exc

    def finish(self) -> None:
        """Flush and move the recording to its name (nothing is kept if nothing was shown)."""
        if self.stream is None:
            self.abort()
            return
        try:
            self._mux(self.stream.encode(None))
            try:
                self._close()  # writes the trailer
            except (OSError, av.FFmpegError) as exc:
                raise write_error(str(self.path), exc) from exc
            self.output.commit()
        except BaseException:  # a second Ctrl-C, a full disk: nothing half-written is left
            self.abort()
            raise

    def abort(self) -> None:
        try:
            self._close()
        except (OSError, av.FFmpegError):
            pass  # its trailer could not be written (a full disk): the file goes all the same
        finally:
            self.output.discard()

    def _close(self) -> None:
        try:
            self.container.close()
        finally:
            if self.file is not None:
                self.file.close()
