"""What sources and sinks are: the interfaces that plugins implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator

from srpipe.frames import Frame


@dataclass(frozen=True)
class SourceOptions:
    """How to open an input."""

    input_format: str | None = None  # container format for stdin/URLs, e.g. "mpegts"
    decode_threads: int = 0  # 0: let the decoder choose
    on_decode_error: str = "stop"  # "stop": fail; "skip": drop the damaged frames and count them
    # Only the video frames with start <= pts < end (None: open end), and no other streams:
    # one chunk of a video split at keyframes (srpipe.default_plugins.batch.chunks). start must be a keyframe's pts.
    pts_range: tuple[int | None, int | None] | None = None
    max_pixels: int | None = None  # the largest frame to decode; None: srpipe.memory.default_max_pixels()
    timeout: float | None = None  # seconds without data before giving up; None: 30 for URLs, no limit else


@dataclass(frozen=True)
class SinkOptions:
    """How to write an output."""

    scale: int = 2
    codec: str | None = None  # None: the container's usual video codec
    crf: int | None = 18
    preset: str | None = "veryfast"
    pix_fmt: str | None = None  # None: the input's
    container_format: str | None = None  # None: from the file name
    codec_options: dict[str, str] = field(default_factory=dict)
    overwrite: bool = False
    hardware_encoder: bool = False  # with no codec given, NVENC H.264 where it works (set for CUDA runs)


class Source(ABC):
    """An input: yields :class:`Frame` objects in presentation order, and
    packets of streams that are copied untouched (audio, subtitles), which a
    sink that does not know them ignores."""

    kind: str = "video"  # "video" or "image": which sinks and output names fit
    location: str = ""
    default_suffix: str = ".mp4"  # extension for the default output name
    frame_count: int | None = None  # an estimate for progress, or None
    width: int | None = None  # frame size when known before decoding
    height: int | None = None
    bytes_per_sample: int = 1
    is_file: bool = True  # False for URLs, pipes and devices: no default output name
    skipped_frames: int = 0  # damaged input frames dropped under on_decode_error="skip"

    @abstractmethod
    def items(self) -> Iterator[Frame | Any]:
        """Frames (and passthrough packets) in decoding order."""

    def close(self) -> None:
        """Release the input."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sink(ABC):
    """An output. Nothing appears under the final name until :meth:`finish`."""

    location: str = ""

    @abstractmethod
    def write_frame(self, frame: Frame) -> None:
        """Encode one upscaled frame."""

    def write_packet(self, packet: Any) -> None:
        """Copy one passthrough packet; ignored by sinks that hold no such streams."""

    @abstractmethod
    def finish(self) -> None:
        """Flush, close and move the output to its final name."""

    @abstractmethod
    def abort(self) -> None:
        """Stop and remove whatever was written; safe to call more than once."""
