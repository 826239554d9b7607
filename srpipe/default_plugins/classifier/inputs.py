"""What ``srpipe classify`` reads: an image, a folder of images or a video (every Nth frame)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from srpipe.errors import SrpipeError
from srpipe.images import image_header, image_paths, image_size, read_rgba8
from srpipe.media import FOLDER_IMAGE_SUFFIXES, VIDEO_SUFFIXES, png_animation
from srpipe.memory import decoder_pixels, default_max_pixels
from srpipe.outputs import special_kind


@dataclass
class InputImage:
    """One picture to classify: RGB (H, W, 3) or grey (H, W) uint8, its (H, W) alpha if any, and
    where it came from; ``notes``: what was not read of the file."""

    source: str
    pixels: np.ndarray
    frame: int | None = None
    time: float | None = None
    alpha: np.ndarray | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Unreadable:
    """A file of a folder that could not be read, and why: the others are classified all the same."""

    source: str
    error: str


def read_inputs(location: str | Path, every: int = 25) -> Iterator[InputImage | Unreadable]:
    """The images at ``location``: one image, each image of a folder (sorted by name; one that
    cannot be read is an :class:`Unreadable`), or every ``every``-th frame of a video (an animated
    PNG's too) with its timestamp."""
    path = Path(location)
    if str(location) == "-":
        raise SrpipeError("classify reads an image, a folder of images or a video file, not standard input; "
                          "save the data to a file and give its name")
    if not path.exists():
        raise SrpipeError(f"{path} does not exist; check the path")
    kind = special_kind(path)
    if kind is not None:  # reading a FIFO would wait for a writer for ever
        raise SrpipeError(f"{path} is a {kind}, not a file; give an image, a folder of images or a video file")
    if path.is_dir():
        try:
            files = image_paths(path)
        except OSError as e:
            raise SrpipeError(f"cannot list the folder {path} ({e.strerror}); check that you may read it") from None
        if not files:
            raise SrpipeError(f"folder {path} holds no images ({', '.join(sorted(FOLDER_IMAGE_SUFFIXES))}); "
                              "give an image, a folder of images or a video")
        for file in files:
            try:
                yield from read_picture(file, every)
            except SrpipeError as e:
                yield Unreadable(str(file), str(e))
    else:
        yield from read_picture(path, every)


def read_picture(path: Path, every: int) -> Iterator[InputImage]:
    """One file: a video's (an animated PNG's) every ``every``-th frame, else the image."""
    if (path.suffix.lower() in VIDEO_SUFFIXES or png_animation(str(path)) is not None
            or (path.suffix.lower() not in FOLDER_IMAGE_SUFFIXES and looks_like_video(_read_bytes(path)))):
        yield from read_video(path, every)
    else:
        yield read_image(path)


def _read_bytes(path: Path) -> bytes:
    """The start of the file, enough to tell a video by (not all of it: a film is gigabytes)."""
    try:
        with open(path, "rb") as file:
            data = file.read(512)
    except OSError as e:
        raise SrpipeError(f"cannot read {path} ({e.strerror}); check that it is a file you may read") from None
    if not data:
        raise SrpipeError(f"{path} is empty (0 bytes); give an image or a video file")
    return data


def looks_like_video(data: bytes) -> bool:
    """Whether ``data`` starts like an MP4/MOV, Matroska/WebM, AVI, MPEG-TS or GIF file."""
    return (data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"
            or (data[:4] == b"RIFF" and data[8:12] == b"AVI ") or data[:4] == b"GIF8"
            or (len(data) > 376 and data[0] == data[188] == data[376] == 0x47))


def read_image(path: Path) -> InputImage:
    """An image file as 8-bit grey or RGB; a file that is not one, or one larger than srpipe
    reads (its header says so before it is decoded), raises :class:`SrpipeError`."""
    stored = image_size(str(path))
    if stored is not None and stored[0] * stored[1] > default_max_pixels():
        raise SrpipeError(f"{path} is {stored[0]}x{stored[1]}, larger than srpipe reads; crop or shrink it")
    pictures = image_header(str(path)).pictures
    notes = (f"only its first picture of {pictures} is classified",) if pictures > 1 else ()
    try:
        pixels, alpha = read_rgba8(path)
    except SrpipeError:
        if looks_like_video(_read_bytes(path)):
            raise SrpipeError(f"{path} is a video, not a {path.suffix} image; rename it with its "
                              "real extension (e.g. .mp4) to classify its frames") from None
        raise
    return InputImage(str(path), pixels, alpha=alpha, notes=notes)


def read_video(path: Path, every: int) -> Iterator[InputImage]:
    """Frames 0, every, 2*every, ... of the video stream srpipe upscales, as RGB with their time in seconds."""
    import av

    from srpipe.video import ffmpeg_errors, main_video, refuse_claimed_size

    limit = default_max_pixels()
    try:  # the probe decodes a first frame: a header claiming a huge one fails instead of taking the memory
        with ffmpeg_errors() as logs:
            container = av.open(str(path), options={"max_pixels": decoder_pixels(limit)})
    except av.error.FFmpegError as e:
        refuse_claimed_size(str(path), logs)
        raise SrpipeError(f"{path} cannot be opened as a video ({e.strerror or e}); check the file") from None
    with container:
        video = main_video(container)
        if video is None:
            raise SrpipeError(f"{path} has no video stream; give an image or a video")
        context = video.codec_context
        if context is None:
            raise SrpipeError(f"{path} has a video stream that cannot be decoded (no codec: the file may be cut "
                              "short); check the file")
        if context.width * context.height > limit:
            raise SrpipeError(f"{path} has {context.width}x{context.height} frames, larger than srpipe reads; "
                              "shrink it")
        context.options = {"max_pixels": decoder_pixels(limit)}  # a far larger frame later is refused too
        found = False
        try:
            for index, frame in enumerate(container.decode(video)):
                if index % every == 0:
                    found = True
                    time = float(frame.time) if frame.time is not None else None
                    yield InputImage(str(path), frame.to_ndarray(format="rgb24"), index, time)
        except av.error.FFmpegError as e:
            raise SrpipeError(f"{path} could not be decoded ({e.strerror or e}); check the file") from None
        if not found:
            raise SrpipeError(f"{path} holds no decodable video frames; check the file")
