"""Still images through OpenCV: RGB -> Y'CbCr planes -> RGB.

Images travel as 16-bit full-range Y'CbCr (BT.601, as JPEG/JFIF defines it) so
that the colour conversion adds no rounding of its own; 8-bit images come back
as 8-bit. Greyscale stays greyscale; alpha is upscaled (bicubic) and kept.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import IMAGE_SUFFIXES, Sink, SinkOptions, Source
from srpipe.outputs import AtomicOutput

EIGHT_BIT_ONLY = {".jpg", ".jpeg", ".webp", ".bmp"}
_HALF = 32768.0
_MAX = 65535.0


def opencv():
    """OpenCV, imported when an image is read or written (the plugins that recognise images
    load with every command), with its log quiet: a damaged image is our error line, not its warning."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


@contextlib.contextmanager
def quiet_stderr():
    """libpng and libjpeg print their complaints to file descriptor 2 themselves, below
    Python: hidden while OpenCV runs, as srpipe's own one-line error says what failed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from an image file's header, without decoding it; ``None`` when the
    header is not one this reads (the decoder then finds the size)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head.startswith(b"BM") and len(head) >= 26:
                width, height = struct.unpack("<ii", head[18:26])
                return width, abs(height)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_size(head)
            if head.startswith(b"\xff\xd8"):
                file.seek(2)
                return _jpeg_size(file)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                file.seek(0)
                return _tiff_size(file.read(1 << 16))
    except (OSError, struct.error, ValueError):
        return None
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    kind = head[12:16]
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg_size(file) -> tuple[int, int] | None:
    """The size in the first start-of-frame marker (SOF0-SOF15 but DHT, JPG and DAC)."""
    while True:
        marker = file.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            file.seek(-1, 1)
            continue
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", file.read(2))
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">xHH", file.read(5))
            return width, height
        if kind == 0xDA:  # start of scan before any frame header
            return None
        file.seek(length - 2, 1)


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset:offset + 2])
    size = {}
    for index in range(count):
        entry = data[offset + 2 + 12 * index: offset + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (size[256], size[257]) if len(size) == 2 else None


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range BT.601 Y'CbCr from float RGB on the 16-bit scale."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = (b - y) / 1.772 + _HALF
    cr = (r - y) / 1.402 + _HALF
    return tuple(np.clip(np.rint(p), 0, _MAX).astype(np.uint16) for p in (y, cb, cr))


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Float RGB on the 16-bit scale from full-range BT.601 Y'CbCr planes."""
    y, cb, cr = (p.astype(np.float64) for p in (y, cb, cr))
    cb -= _HALF
    cr -= _HALF
    r = y + 1.402 * cr
    g = y - 0.344136286 * cb - 0.714136286 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


def _to_depth(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """16-bit-scale floats to uint8 or uint16 samples."""
    if bit_depth == 8:
        return np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return np.clip(np.rint(values), 0, _MAX).astype(np.uint16)


def read_image(path: str | Path) -> np.ndarray:
    """An image file's samples as OpenCV decodes them: (H, W) grey or (H, W, C) BGR(A), uint8 or
    uint16. Every srpipe command reads images through here, so each gives the same errors."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SrpipeError(f"cannot read {path}: {exc.strerror}; check that it is a file you may read") from exc
    if not data.size:
        raise SrpipeError(f"{path} is empty (0 bytes); give an image file")
    cv2 = opencv()
    try:
        with quiet_stderr():
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV's own size limit or a damaged header: its text is not for users
        image = None
    if image is None:
        raise SrpipeError(f"cannot read {path} as an image (corrupt, truncated or not an image); "
                          "check that it is a complete PNG/JPEG/WebP/BMP/TIFF")
    if image.dtype not in (np.uint8, np.uint16):
        raise SrpipeError(f"{path} has {image.dtype} samples; srpipe reads 8- and 16-bit images")
    return image


def read_rgb8(path: str | Path) -> np.ndarray:
    """An image file as 8-bit (H, W) grey or (H, W, 3) RGB, alpha dropped."""
    cv2 = opencv()
    pixels = read_image(path)
    if pixels.dtype != np.uint8:
        pixels = (pixels.astype(np.float64) / 257.0).round().astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[..., 0]
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return pixels


class ImageSource(Source):
    """One still image as a single frame."""

    kind = "image"
    default_suffix = ".png"
    frame_count = 1

    def __init__(self, location: str):
        self.location = location
        self.is_file = True
        # For the memory plan: the RGB <-> Y'CbCr conversions hold float64 copies of the picture,
        # which cost more than the 16-bit planes, and where freed blocks land varies from run to
        # run (the allocator keeps them: srpipe.memory); planned as 10-byte samples, the plan
        # meets the highest measured peak, so an image too large for free memory is refused
        # before decoding.
        self.bytes_per_sample = 10
        # The size from the header: checked against the memory plan before anything is decoded.
        self.width, self.height = image_size(location) or (None, None)
        self.bit_depth = 8

    def _decode(self) -> np.ndarray:
        """The image as float64 on the 16-bit scale (BGR order, alpha last)."""
        image = read_image(self.location)
        if self.width is not None and image.shape[:2] != (self.height, self.width):
            raise SrpipeError(f"{self.location} decodes to a size other than its header's; "
                              "check that it is a complete image")
        self.bit_depth = 8 if image.dtype == np.uint8 else 16
        self.height, self.width = image.shape[:2]
        image = image.astype(np.float64) * (257.0 if self.bit_depth == 8 else 1.0)
        return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image

    def items(self) -> Iterator[Frame]:
        image = self._decode()
        alpha = None
        if image.ndim == 3 and image.shape[2] in (2, 4):
            alpha = image[..., -1].astype(np.uint16)
            image = image[..., :-1]
        colour = image if image.ndim == 3 else None
        # OpenCV expands grey+alpha to BGRA; equal channels mean a grey picture.
        grey = colour is None or (
            np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 1], colour[..., 2])
        )
        if grey:
            grey = image if image.ndim == 2 else image[..., 0]
            yield Frame((grey.astype(np.uint16),), PLANE_FORMATS["gray16le"], True, alpha=alpha)
        else:
            planes = rgb_to_ycbcr(image[..., ::-1])  # OpenCV's BGR
            yield Frame(planes, PLANE_FORMATS["yuv444p16le"], True, alpha=alpha)


class ImageSink(Sink):
    """Writes the one upscaled frame as an image, in the input's bit depth where the format allows."""

    def __init__(self, location: str, source: ImageSource, options: SinkOptions):
        self.location = location
        self.source = source
        self.suffix = Path(location).suffix.lower()
        if self.suffix not in IMAGE_SUFFIXES:  # a FIFO or device (/dev/null) without an image name
            self.suffix = ".png"
        self.encoder = {".jpg": "jpeg", ".tif": "tiff"}.get(self.suffix, self.suffix.lstrip("."))
        self.output = AtomicOutput(Path(location), options.overwrite)
        self.written = False

    def write_frame(self, frame: Frame) -> None:
        cv2 = opencv()
        depth = 8 if self.suffix in EIGHT_BIT_ONLY else self.source.bit_depth
        if len(frame.planes) == 1:
            image = _to_depth(frame.planes[0].astype(np.float64), depth)
        else:
            image = _to_depth(ycbcr_to_rgb(*frame.planes)[..., ::-1], depth)
        if frame.alpha is not None:
            alpha = _to_depth(frame.alpha.astype(np.float64), depth)
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            image = np.dstack([image, alpha])
        try:
            with quiet_stderr():
                ok, encoded = cv2.imencode(self.suffix, image)
        except cv2.error:  # OpenCV's assertion text (several lines, C++ names) is not for users
            ok = False
        if not ok:
            raise SrpipeError(f"cannot encode {self.location} ({image.shape[1]}x{image.shape[0]}) as {self.suffix}; "
                              "use .png")
        try:
            with open(self.output.temp, "wb") as file:  # Python's open: Ctrl-C ends a wait for a FIFO's reader
                file.write(encoded.tobytes())
        except OSError as exc:
            raise SrpipeError(f"cannot write {self.location}: {exc.strerror}") from exc
        self.written = True

    def finish(self) -> None:
        if not self.written:
            raise SrpipeError(f"nothing was upscaled from {self.source.location}")
        self.output.commit()

    def abort(self) -> None:
        self.output.discard()
