"""What sources and sinks are: the interfaces that plugins implement."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from srpipe.errors import PluginWarning, SrpipeError
from srpipe.plugin_guard import PluginExit, exits_as_errors, plugin_code
from srpipe.plugins import DEFAULT_PLUGINS

if TYPE_CHECKING:  # frames load NumPy, which --help and the options' checks do without
    from srpipe.frames import Frame

#: still images srpipe reads and writes (through OpenCV), by file name
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
#: still images folder commands (batch, eval, train, classify) take by name: those, JPEG's other
#: names (Windows and browsers save .jfif), AVIF and JPEG 2000, which OpenCV reads but srpipe
#: writes under none of them
FOLDER_IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".jpe", ".jfif", ".jif", ".avif", ".jp2", ".j2k"}
#: raw Motion JPEG: JPEGs back to back, which begin as one picture does
MOTION_JPEG_SUFFIXES = frozenset({".mjpeg", ".mjpg"})
#: video files that folder commands (batch, classify) pick up by name; FFmpeg reads more
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".m2ts", ".mts", ".avi", ".flv",
                            ".wmv", ".mpg", ".mpeg", ".vob", ".mxf", ".3gp", ".ogv", ".y4m", ".gif", ".apng",
                            *MOTION_JPEG_SUFFIXES})
# How the still-image formats begin (WebP: "RIFF", its size, "WEBP"; AVIF: its ftyp box, _still_avif)
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*",
                     b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")  # JPEG 2000: JP2's box, a bare codestream


def is_image_path(location: str) -> bool:
    """Whether the name says still image (for output names)."""
    return PurePath(location).suffix.lower() in IMAGE_SUFFIXES


def is_image_file(path: str) -> bool:
    """Whether the content says still image, whatever the name: an animated PNG of more than
    one frame is a video (FFmpeg reads it as one, as it reads a GIF), and so is an AVIF sequence;
    and JPEGs back to back (a camera's Motion JPEG), which begin as one does, by their name."""
    if PurePath(path).suffix.lower() in MOTION_JPEG_SUFFIXES:
        return False
    try:
        with open(path, "rb") as file:
            head = file.read(64)
    except OSError:
        return False
    if head.startswith(_IMAGE_SIGNATURES[0]):
        animation = png_animation(path)
        return animation is None or animation[0] < 2
    return head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or _still_avif(head)


def _still_avif(head: bytes) -> bool:
    """Whether a file that begins with ``head`` is an AVIF of one picture: its ftyp box's brands
    (the major one, a version, the compatible ones) name AVIF's picture (avif) and not its image
    sequence (avis), which an animated AVIF's do."""
    if head[4:8] != b"ftyp":
        return False
    brands = {head[at:at + 4] for at in range(8, min(int.from_bytes(head[:4], "big"), len(head)), 4)}
    return b"avif" in brands and b"avis" not in brands


def png_animation(path: str) -> tuple[int, int] | None:
    """(frames, plays) from an animated PNG's animation chunk (acTL; plays 0: for ever), or None
    for a still PNG or a file that is no PNG. acTL must come before the picture's data."""
    found = png_chunks(path, {b"acTL"})
    if not found or len(found[0][1]) < 8:
        return None
    data = found[0][1]
    return int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")


def png_chunks(path: str, kinds, whole: bool = False) -> list[tuple[bytes, bytes]] | None:
    """(kind, data) of the chunks of ``kinds`` in a PNG file, in their order: of those before the
    picture's data, or, ``whole``, of all (text may follow the data). Only the chunks' headers are
    read of the others. None for a file that is no PNG; a damaged one gives what was read of it
    (its decoder says what is wrong)."""
    found = []
    try:
        with open(path, "rb") as file:
            if file.read(8) != _IMAGE_SIGNATURES[0]:
                return None
            while len(header := file.read(8)) == 8 and header[4:8] != b"IEND" and (whole or header[4:8] != b"IDAT"):
                length = int.from_bytes(header[:4], "big")
                if header[4:8] in kinds:
                    data = file.read(length)
                    if len(data) < length:
                        break
                    found.append((header[4:8], data))
                    length = 0
                file.seek(length + 4, 1)  # the chunk's data and its CRC
    except OSError:
        return None
    return found


@dataclass(frozen=True)
class SourceOptions:
    """How to open an input."""

    input_format: str | None = None  # container format for stdin/URLs, e.g. "mpegts"
    decode_threads: int = 0  # 0: let the decoder choose
    on_decode_error: str = "stop"  # "stop": fail; "skip": drop the damaged frames and count them
    # Only the video frames with start <= pts < end (None: open end), and no other streams:
    # one chunk of a video split at keyframes (srpipe batch). start must be a keyframe's pts.
    pts_range: tuple[int | None, int | None] | None = None
    max_pixels: int | None = None  # the largest frame to decode; None: srpipe.memory.default_max_pixels()
    timeout: float | None = None  # seconds without data before giving up; None: 30 for URLs, no limit else
    # "auto": deinterlace the frames the decoder flags as interlaced (srpipe.deinterlace); "all":
    # every frame, for interlaced video not marked as such; "off": upscale the fields as one picture
    deinterlace: str = "auto"


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
    hardware_gpu: int | None = None  # the GPU NVENC encodes on (--device cuda:N); None: its first


def turns_a_quarter(matrix: Sequence[int] | None) -> bool:
    """Whether FFmpeg's display ``matrix`` (3x3, row by row) turns the picture by 90 or 270
    degrees: its rotation part is then off the diagonal."""
    return bool(matrix) and abs(matrix[0]) + abs(matrix[4]) < abs(matrix[1]) + abs(matrix[3])


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
    samples_per_pixel: int = 3  # of the frames at their largest (4:4:4; 4 with alpha), for the memory plan
    is_file: bool = True  # False for URLs, pipes and devices: no default output name
    skipped_frames: int = 0  # damaged input frames dropped under on_decode_error="skip"
    concealed_frames: int = 0  # damaged input frames the decoder mended (lost parts filled in) and passed on
    deinterlaced_frames: int = 0  # interlaced frames made progressive (SourceOptions.deinterlace)
    # What a video sink copies to the output; a source that does not know one leaves the default.
    frame_rate: Fraction | None = None  # the nominal rate; frames without pts are timed by it (else 25)
    time_base: Fraction | None = None  # the unit of the frames' pts; None: the first frame's
    colour: tuple[int, int, int] | None = None  # (colorspace, primaries, transfer) as FFmpeg numbers them
    display_matrix: tuple[int, ...] | None = None  # rotation of the picture (FFmpeg's display matrix)
    metadata: Mapping[str, str] = MappingProxyType({})  # container tags (title, ...)
    passthrough: Sequence[Any] = ()  # PyAV streams whose packets items() yields for copying

    @abstractmethod
    def items(self) -> Iterator[Frame | Any]:
        """Frames (and passthrough packets) in decoding order."""

    def near_lossless(self) -> bool:
        """Whether the pictures were coded losslessly or nearly so (a lossless codec; H.264 at
        fine quantizers), so that they are as clean as still images: a model with a
        ``near_lossless_model`` then runs that one. Asked once, before the first frame is read."""
        return False

    def quantizer(self) -> float | None:
        """The mean quantizer the first pictures were coded at, on H.264's QP scale (0: lossless,
        51: the coarsest), or None where it is not known; where it is at least a pair's QP, a
        model's ``coarse_quantizer_models`` run. Asked once, before the first frame is read."""
        return None

    def quarter_turned(self) -> bool:
        """Whether the pictures are shown turned a quarter, by 90 or 270 degrees (a phone's
        portrait video), so that ``--width`` and ``--height`` size them as shown. Asked once,
        before the first frame is read, only for those options and fractional scales; from
        ``display_matrix``."""
        return turns_a_quarter(self.display_matrix)

    def close(self) -> None:
        """Release the input."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # By now the output is finished and in place, or the run's own error is on its way: a
        # close that fails loses neither, so it is told, and the run ends as it would have.
        try:
            with exits_as_errors():
                self.close()
        except Exception as failure:
            told = failure.__cause__ if isinstance(failure, PluginExit) else failure
            warnings.warn(f"{described(self)} could not close: {type(told).__name__}: {told}", PluginWarning)


class Sink(ABC):
    """An output. Nothing appears under the final name until :meth:`finish`."""

    location: str = ""
    encoder: str | None = None  # what encoded the output (``libx264``, ``h264_nvenc``; ``png``, ``jpeg``), once known

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


def open_source(pm, location: str, options: SourceOptions) -> Source:
    """The :class:`Source` the first willing plugin opens for ``location``."""
    return _first_opened(pm, "open_source", Source, f"no plugin can open {location}", location=location,
                         options=options)


def open_sink(pm, location: str, source: Source, options: SinkOptions) -> Sink:
    """The :class:`Sink` the first willing plugin opens for ``location``."""
    return _first_opened(pm, "open_sink", Sink, f"no plugin can write {location}", location=location,
                         source=source, options=options)


_OPENED_BY = "_srpipe_plugin"  # the attribute that holds, on a source or sink, the third-party plugin that opened it


def _first_opened(pm, hook_name: str, kind: type, none_message: str, **arguments):
    """What the first plugin to accept gives, plugins asked in pluggy's order (the later-registered
    first) one at a time, so that srpipe knows whose it is: one that is no ``kind`` is refused naming
    its plugin, and a third-party plugin's source or sink is marked with it for the errors of the run
    (:func:`described`)."""
    hook = getattr(pm.hook, hook_name)
    # Wrappers (pluggy's wrapper=True) wrap each plugin's call: they are never left out
    plugins = list(dict.fromkeys(impl.plugin for impl in reversed(hook.get_hookimpls())
                                 if not (impl.wrapper or impl.hookwrapper)))
    for plugin in plugins:
        name = pm.get_name(plugin)
        with plugin_code(f"plugin {name!r}"), exits_as_errors():
            opened = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not plugin])(
                **arguments)
        if opened is None:
            continue
        label = pm.label(name)
        if not isinstance(opened, kind):
            raise SrpipeError(f"{label} opened {arguments['location']} as a {type(opened).__name__}, not a "
                              f"srpipe.media.{kind.__name__}; run without it (SRPIPE_DISABLE_PLUGINS={name}) and "
                              "report it to its authors")
        if name not in DEFAULT_PLUGINS:
            try:  # object's own: a frozen dataclass refuses setattr; one with __slots__ has no room, and goes unnamed
                object.__setattr__(opened, _OPENED_BY, label)
            except (AttributeError, TypeError):
                pass
        return opened
    raise SrpipeError(none_message)


def opened_by(opened: Source | Sink) -> str | None:
    """The third-party plugin that opened a source or sink (``plugin 'NAME' (VERSION)``), or None for
    srpipe's own and for one that :func:`open_source` or :func:`open_sink` did not open."""
    return getattr(opened, _OPENED_BY, None)


def described(opened: Source | Sink) -> str:
    """A source or sink as errors name it: ``source GradientSource (gradient:64x48) of plugin
    'gradient' (0.1.0)``, with the plugin that opened it, where it is not srpipe's own."""
    kind = "source" if isinstance(opened, Source) else "sink"
    by = opened_by(opened)
    return f"{kind} {type(opened).__name__} ({opened.location})" + (f" of {by}" if by else "")
