"""Still images through OpenCV: RGB -> Y'CbCr planes -> RGB.

Images travel as 16-bit full-range Y'CbCr (BT.601, as JPEG/JFIF defines it) so
that the colour conversion adds no rounding of its own; 8-bit images come back
as 8-bit. Greyscale stays greyscale; alpha is upscaled (bicubic) and kept (the pipeline
fills the colour under fully transparent pixels from the visible ones first).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import struct
import sys
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import FOLDER_IMAGE_SUFFIXES, IMAGE_SUFFIXES, Sink, SinkOptions, Source, png_chunks
from srpipe.memory import BAND_PIXELS, default_max_pixels, refuse_unless_fits, row_bands, working_bytes
from srpipe.models import UpscalerTraits
from srpipe.outputs import AtomicOutput, special_kind, write_all, writes_through
from srpipe.sizing import SizePlan

EIGHT_BIT_ONLY = {".jpg", ".jpeg", ".webp", ".bmp"}
NO_ALPHA = {".jpg", ".jpeg"}  # OpenCV writes the others' alpha
# The formats srpipe writes pictures in, by --format's name, as their file suffix
PICTURE_FORMATS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}
MAX_DPI = 65535  # the most JPEG's JFIF says; a density past it is no printer's
FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WebP", ".bmp": "BMP", ".png": "PNG", ".tif": "TIFF",
                ".tiff": "TIFF"}
KEEPS_METADATA = {".png", ".jpg", ".jpeg", ".webp"}  # where OpenCV writes an ICC profile and EXIF
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
JPEG_EXIF_BYTES = 65533 - len(b"Exif\0\0")  # a JPEG segment's most, less its length and EXIF's mark
# an ICC profile's piece in a JPEG segment (ICC.1 B.4): less its mark, the piece's number and the count of them
JPEG_ICC_BYTES = 65533 - len(b"ICC_PROFILE\0") - 2
# For the memory plan: the float64 copies the conversions to and from 16-bit planes make of a
# band of rows (memory.BAND_PIXELS pixels), colour (Y'CbCr <-> RGB) or grey, in bytes a pixel.
BAND_WORKING = {"colour": 80, "grey": 32}
# For the memory plan: what the threads of a large picture's run take that a tiny one's do not
# (OpenCV's worker threads' buffers, the allocator's heaps for the pipeline's threads).
THREADS_WORKING = 32 << 20
# For the memory plan: what filling the colour under transparent pixels takes at its largest, in bytes a
# pixel of the picture (measured: tests/core/test_image_memory.py)
FILL_WORKING = 40
_HALF = 32768.0
_MAX = 65535.0
ORIENTATION_TAG = 0x0112  # EXIF's
X_RESOLUTION = 282  # TIFF's and EXIF's
BITS_PER_SAMPLE, EXTRA_SAMPLES = 258, 338  # TIFF's
# Pillow's modes of an 8-bit TIFF with alpha: grey (straight or premultiplied), palette and colour
# (Pillow makes premultiplied colour straight as it decodes)
PILLOW_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA"})
# A PNG's chunks that say how its colours are shown (gamma, primaries, sRGB, HDR's cICP), and its
# text (a title, a comment, the settings a generator made it with): carried into a PNG output,
# which OpenCV writes with no chunks but the ICC profile's and the EXIF's
PNG_COLOUR_CHUNKS = frozenset({b"gAMA", b"cHRM", b"sRGB", b"cICP"})
PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
PNG_HEADER_BYTES = 8 + 25  # the signature and the IHDR chunk, which come first


def opencv():
    """OpenCV, imported when an image is read or written (the plugins that recognise images
    load with every command), with its log quiet: a damaged image is our error line, not its warning."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


@contextlib.contextmanager
def quiet_stderr():
    """C libraries (libpng, libjpeg, OpenCV's camera backends) print their complaints to file
    descriptor 2 themselves, below Python: hidden while they run, as srpipe's own one-line error
    says what failed."""
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


def image_paths(folder: str | Path) -> list[Path]:
    """The image files in ``folder``, sorted by name. Sub-folders are passed over, and special
    files (FIFOs, sockets, devices, links to nothing) with a warning, once for each however
    often the folder is listed: reading a FIFO would wait for a writer forever, a device might
    never end."""
    paths = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FOLDER_IMAGE_SUFFIXES):
        if path.is_file():
            paths.append(path)
        elif not path.is_dir() and path not in _SKIPPED:
            _SKIPPED.add(path)
            warnings.warn(f"skipped {path}: a {special_kind(path) or 'link to nothing'}, not an image file")
    return paths


_SKIPPED: set[Path] = set()  # what image_paths has warned of


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from an image file's header, without decoding it; ``None`` when the
    header is not one this reads (the decoder then finds the size), or ``path`` is no regular
    file (opening a FIFO would wait for a writer for ever: its reader refuses it)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as file:
            head = file.read(64)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head.startswith(b"BM") and len(head) >= 26:
                if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2's header: 16-bit sides
                    return struct.unpack("<HH", head[18:22])
                width, height = struct.unpack("<ii", head[18:26])
                return width, abs(height)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_size(head)
            if head.startswith(b"\xff\xd8"):
                file.seek(2)
                return _jpeg_size(file)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff_size(file, "<" if head[:2] == b"II" else ">")
    except (OSError, struct.error, ValueError):
        return None
    return None


def image_layout(path: str) -> tuple[int, int]:
    """(channels, bytes per sample) OpenCV will decode an image file into, from its header
    where it says (PNG), else the most its format holds, for the memory plan."""
    try:
        with open(path, "rb") as file:
            head = file.read(32)
    except OSError:
        head = b""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        depth, colour = head[24], head[25]
        # grey 1, RGB 3; grey with alpha comes as BGRA, and a palette may carry alpha (tRNS)
        return {0: 1, 2: 3}.get(colour, 4), 2 if depth == 16 else 1
    if head.startswith(b"\xff\xd8"):
        return 3, 1
    # TIFF and JPEG 2000 may hold 16 bits, AVIF 10 and 12 (decoded to 16)
    return 4, 1 if head.startswith((b"RIFF", b"BM")) else 2


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


def _tiff_size(file, order: str) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD, wherever it lies (libtiff writes
    it after the pixels)."""
    file.seek(4)
    (offset,) = struct.unpack(order + "I", file.read(4))
    file.seek(offset)
    (count,) = struct.unpack(order + "H", file.read(2))
    entries = file.read(12 * count)
    size = {}
    for index in range(len(entries) // 12):
        entry = entries[12 * index: 12 * index + 12]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (size[256], size[257]) if len(size) == 2 else None


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says beyond its size, as Pillow reads it without decoding."""

    format: str | None = None  # Pillow's name of it: "PNG", "JPEG", "WEBP", "TIFF"...
    orientation: int = 1  # EXIF orientation: 1 as stored; 5-8 turn the picture a quarter
    pictures: int = 1  # an animation's frames or a TIFF's pages (its thumbnails apart)
    thumbnails: int = 0  # a TIFF's reduced-resolution copies of its picture after it (NewSubfileType 1)
    size: tuple[int, int] | None = None  # (width, height) as stored
    colour_profile: bytes | None = None  # the ICC profile (a phone's Display P3), if any
    exif: bytes | None = None  # the EXIF (camera, date, place) of a JPEG, PNG or WebP, if any
    decoder_turns: bool = False  # the decoder turns the picture itself as it decodes it (TIFF: OpenCV and Pillow)
    # An 8-bit TIFF with alpha, which Pillow decodes: OpenCV reads it through libtiff's RGBA
    # interface, which multiplies the colour by the alpha, and reads grey with alpha as grey alone
    pillow_decodes: bool = False
    # A TIFF whose colour is stored multiplied by its alpha (ExtraSamples 1, associated alpha),
    # where OpenCV decodes it (16 bits): srpipe, like the formats it writes, keeps colour and alpha apart
    premultiplied: bool = False
    # A grey PNG's transparent grey (its tRNS chunk), on the scale OpenCV decodes the samples to:
    # OpenCV decodes palette and RGB PNGs' tRNS as alpha, but not a grey one's
    transparent_grey: int | None = None
    png_chunks: tuple[tuple[bytes, bytes], ...] = ()  # a PNG's colour and text chunks, (kind, data), in order
    # pixels an inch (across, down) as stored, where it says (JPEG's JFIF or EXIF, PNG's pHYs, TIFF's, BMP's)
    dpi: tuple[float, float] | None = None

    # Pillow could not read the header: the orientation, profile, EXIF and density are not known
    unread: bool = False

    @property
    def turned(self) -> bool:
        return self.orientation >= 5


def image_header(path: str) -> ImageHeader:
    """The :class:`ImageHeader` of ``path``; the defaults, marked unread, where Pillow cannot read
    it, even past what it need not refuse (:func:`_lenient_pillow`)."""
    unreadable = (OSError, SyntaxError, ValueError, TypeError, struct.error)
    try:
        return _read_header(path)
    except unreadable:
        pass
    try:
        with _lenient_pillow():
            return _read_header(path)
    except unreadable:
        return ImageHeader(unread=True)


def _read_header(path: str) -> ImageHeader:
    """The header of ``path`` as Pillow reads it, without decoding the picture."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # srpipe checks sizes itself (--max-pixels); Pillow's check would hide a header
    # Pillow's own warnings on a damaged EXIF ("Corrupt EXIF data"), which names no file: its tags are passed over
    with warnings.catch_warnings(action="ignore"), Image.open(path) as image:
        kept = PNG_COLOUR_CHUNKS | PNG_TEXT_CHUNKS
        chunks = png_chunks(path, kept | {b"IHDR", b"tRNS", b"eXIf"}, whole=True) or []
        if image.format == "TIFF":  # its EXIF tags are the IFD's own, which OpenCV writes no more of
            exif, orientation = None, image.getexif().get(ORIENTATION_TAG)
        else:  # a PNG's eXIf may follow the picture's data, where Pillow reads it only as it decodes
            exif = image.info.get("exif") or dict(chunks).get(b"eXIf")
            orientation = _orientation(exif) if exif else None
        # a phone's JPEG with a gain map (Ultra HDR) is an MPO of two: one picture to show
        pictures = 1 if image.format == "MPO" else getattr(image, "n_frames", 1)
        thumbnails = _tiff_thumbnails(image) if image.format == "TIFF" else 0
        tags = image.tag_v2 if image.format == "TIFF" else {}
        pillow_decodes = set(tags.get(BITS_PER_SAMPLE, ())) == {8} and image.mode in PILLOW_ALPHA_MODES
        return ImageHeader(image.format, orientation if orientation in range(1, 9) else 1,
                           pictures - thumbnails, thumbnails, image.size,
                           image.info.get("icc_profile") or None, exif or None,
                           decoder_turns=image.format == "TIFF", pillow_decodes=pillow_decodes,
                           premultiplied=tags.get(EXTRA_SAMPLES, ())[:1] == (1,) and not pillow_decodes,
                           transparent_grey=_transparent_grey(chunks),
                           png_chunks=tuple(chunk for chunk in chunks if chunk[0] in kept),
                           dpi=_stated_dpi(image))


# Pillow's LOAD_TRUNCATED_IMAGES is one switch for the whole process: held while it is on (a damaged
# header read again) and while srpipe decodes with Pillow, so that no decode in another thread sees it
_PILLOW_SWITCH = threading.RLock()


@contextlib.contextmanager
def _lenient_pillow():
    """Pillow reading past what it need not refuse in a header: a PNG's ancillary chunk with a bad
    checksum (libpng, which decodes the picture, passes it over too) or text that inflates past
    Pillow's limit; without it, Pillow reads nothing of the header, and the photo's orientation and
    profile were lost. On only while such a header is read: Pillow decoding a truncated picture
    so fills its missing rows without a word."""
    from PIL import ImageFile

    with _PILLOW_SWITCH:
        lenient = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def colour_space(profile: bytes | None) -> str:
    """The colour space an ICC profile names (its bytes 16-20: "RGB", "GRAY", "CMYK"...); "" for none."""
    return (profile or b"")[16:20].decode("latin-1").strip()


def _orientation(exif: bytes) -> int | None:
    """The orientation tag of EXIF bytes (with or without their "Exif" mark)."""
    from PIL import Image

    tags = Image.Exif()
    tags.load(exif)
    return tags.get(ORIENTATION_TAG)


def _stated_dpi(image) -> tuple[float, float] | None:
    """The density, pixels an inch, that Pillow's ``image`` states; None where it states none.
    Pillow fills in its own where a file says none: 1 for a TIFF without resolution tags, 72 for a
    JPEG without a JFIF unit whose EXIF has no resolution."""
    if image.format == "TIFF" and X_RESOLUTION not in image.tag_v2:
        return None
    if image.format in ("JPEG", "MPO") and image.info.get("jfif_unit") not in (1, 2) and \
            X_RESOLUTION not in image.getexif():
        return None
    dpi = image.info.get("dpi")
    return (float(dpi[0]), float(dpi[1])) if dpi and min(dpi) > 0 else None


def _tiff_thumbnails(image) -> int:
    """How many of a TIFF's pages after its first are no pages of their own but a reduced-resolution
    copy of a picture (NewSubfileType, tag 254, bit 0: a thumbnail or preview) or its transparency
    mask (bit 2)."""
    thumbnails = 0
    for page in range(1, image.n_frames):
        image.seek(page)
        thumbnails += bool(image.tag_v2.get(254, 0) & 0b101)
    image.seek(0)
    return thumbnails


def _transparent_grey(chunks: list[tuple[bytes, bytes]]) -> int | None:
    """The grey a grey PNG's tRNS chunk makes transparent (of its ``chunks``), as OpenCV decodes
    it: samples of 1, 2 and 4 bits are spread over 8 (1 -> 255 at 1 bit); None where the PNG is
    not grey or has none."""
    found = dict(chunks)
    header, key = found.get(b"IHDR", b""), found.get(b"tRNS", b"")
    if len(header) != 13 or header[9] != 0 or len(key) != 2:  # colour type 0: grey
        return None
    depth = header[8]
    return int.from_bytes(key, "big") * (255 // (2**depth - 1) if depth < 8 else 1)


def upscaled_exif(exif: bytes, width: int, height: int) -> bytes | None:
    """``exif`` for the upscaled picture of ``width`` x ``height``, written upright: its orientation
    1 and its size the new one, its thumbnail (the old picture's) and maker's notes (which point
    into the old file's layout) left out; TIFF bytes, as OpenCV writes them. None where Pillow
    cannot read it."""
    from PIL import ExifTags, Image

    try:
        with warnings.catch_warnings(action="ignore"):  # Pillow's on a damaged EXIF, whose tags it passes over
            tags = Image.Exif()
            tags.load(exif)
            if ORIENTATION_TAG in tags:
                tags[ORIENTATION_TAG] = 1
            camera = tags.get_ifd(ExifTags.IFD.Exif)
            for tag, size in ((ExifTags.Base.ExifImageWidth, width), (ExifTags.Base.ExifImageHeight, height)):
                if tag in camera:
                    camera[tag] = size
            camera.pop(ExifTags.Base.MakerNote, None)
            return tags.tobytes()[len(b"Exif\0\0"):]  # Pillow writes IFD0 and its sub-IFDs, not the thumbnail
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return None


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as its EXIF ``orientation`` says it is shown (a view where it can be)."""
    turned = image.swapaxes(0, 1) if orientation >= 5 else image  # 5-8: the transpose, then as 1-4 flip it
    rows, columns = {1: (1, 1), 2: (1, -1), 3: (-1, -1), 4: (-1, 1),
                     5: (1, 1), 6: (1, -1), 7: (-1, -1), 8: (-1, 1)}[orientation]
    return turned[::rows, ::columns]


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


def _frame_to_image(frame: Frame, depth: int) -> np.ndarray:
    """The frame as OpenCV writes it, (H, W) grey or (H, W, C) BGR(A) of ``depth`` bits, made a
    band of rows at a time so that the float copies of the colour conversion stay small."""
    colour = len(frame.planes) == 3
    channels = 4 if frame.alpha is not None else 3 if colour else 1
    shape = (frame.height, frame.width) + ((channels,) if channels > 1 else ())
    image = np.empty(shape, np.uint8 if depth == 8 else np.uint16)
    for rows in row_bands(frame.height, frame.width):
        if colour:
            image[rows, :, :3] = _to_depth(ycbcr_to_rgb(*(plane[rows] for plane in frame.planes))[..., ::-1], depth)
        elif channels == 1:
            image[rows] = _to_depth(frame.planes[0][rows].astype(np.float64), depth)
        else:  # grey with alpha: OpenCV writes it as BGRA
            image[rows, :, :3] = _to_depth(frame.planes[0][rows].astype(np.float64), depth)[..., None]
        if frame.alpha is not None:
            image[rows, :, 3] = _to_depth(frame.alpha[rows].astype(np.float64), depth)
    return image


def _to_depth(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """16-bit-scale floats to uint8 or uint16 samples."""
    if bit_depth == 8:
        return np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return np.clip(np.rint(values), 0, _MAX).astype(np.uint16)


def read_image(path: str | Path, header: ImageHeader | None = None) -> np.ndarray:
    """An image file's samples as OpenCV decodes them, turned upright as its EXIF orientation
    says (``header``: read from the file where not given): (H, W) grey or (H, W, C) BGR(A),
    uint8 or uint16. Every srpipe command reads images through here, so each gives the same
    errors and sees a phone's photo the way up it is shown."""
    kind = special_kind(path)
    if kind is not None:  # reading a FIFO would wait for a writer for ever
        raise SrpipeError(f"{path} is a {kind}, not an image file; give a PNG/JPEG/WebP/BMP/TIFF file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SrpipeError(f"cannot read {path}: {exc.strerror}; check that it is a file you may read") from exc
    if not data.size:
        raise SrpipeError(f"{path} is empty (0 bytes); give an image file")
    header = header or image_header(str(path))
    cv2 = opencv()
    try:
        with quiet_stderr():
            if _is_os2_bitmap(data):
                image = _os2_bitmap(data)
            elif header.pillow_decodes:
                image = _alpha_tiff(path)
            else:
                image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except (cv2.error, OSError, ValueError):  # a size limit or a damaged header: the decoder's text is not for users
        image = None
    if image is None:
        raise SrpipeError(f"cannot read {path} as an image (corrupt, truncated or not an image); "
                          "check that it is a complete PNG/JPEG/WebP/BMP/TIFF")
    if image.dtype not in (np.uint8, np.uint16):
        raise SrpipeError(f"{path} has {image.dtype} samples; srpipe reads 8- and 16-bit images: convert it "
                          "to a 16-bit PNG or TIFF")
    if header.unread:
        warnings.warn(f"{path}: Pillow cannot read its header: its EXIF orientation, colour profile, EXIF and "
                      "density are left out, and the picture is taken as stored (a photo may lie turned)")
    if header.transparent_grey is not None and image.ndim == 2:  # grey and alpha, as OpenCV gives them
        alpha = image != header.transparent_grey
        image = np.dstack((image, alpha.astype(image.dtype) * np.iinfo(image.dtype).max))
    if header.premultiplied and image.ndim == 3 and image.shape[2] == 4:
        _unpremultiply(image)
    if header.orientation == 1 or header.decoder_turns:
        return image
    return np.ascontiguousarray(upright(image, header.orientation))


def _is_os2_bitmap(data: np.ndarray) -> bool:
    return data[:2].tobytes() == b"BM" and data[14:18].tobytes() == (12).to_bytes(4, "little")


def _os2_bitmap(data: np.ndarray) -> np.ndarray:
    """An OS/2 bitmap's BGR samples, by Pillow: OpenCV reads a 24-bit one as grey. Its size is
    checked first: Pillow's own limit is off (:func:`image_header`)."""
    import io

    from PIL import Image

    width, height = struct.unpack("<HH", data[18:22].tobytes())
    if width * height > default_max_pixels():
        raise ValueError("larger than srpipe reads")  # read_image's one-line refusal

    Image.MAX_IMAGE_PIXELS = None  # srpipe checks sizes itself (--max-pixels)
    with _PILLOW_SWITCH, Image.open(io.BytesIO(data.tobytes())) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])


def _alpha_tiff(path: str | Path) -> np.ndarray:
    """An 8-bit TIFF with alpha (:attr:`ImageHeader.pillow_decodes`), by Pillow, with its alpha
    straight: (H, W, 2) grey and alpha, or BGRA, turned as its orientation says (Pillow turns a
    TIFF as it loads it, as OpenCV does). Its size is checked first: Pillow's own limit is off
    (:func:`image_header`)."""
    from PIL import Image

    cv2 = opencv()
    # From a file object, not by its name: Pillow (13) maps a named file's uncompressed samples at the
    # picture's size as shown, not as stored, and scrambles a turned one.
    with _PILLOW_SWITCH, open(path, "rb") as file, Image.open(file) as image:
        if image.width * image.height > default_max_pixels():
            raise ValueError("larger than srpipe reads")  # read_image's one-line refusal
        grey = image.mode in ("LA", "La")
        wanted = "LA" if grey else "RGBA"
        pixels = np.array(image if image.mode == wanted else image.convert(wanted))
    return pixels if grey else cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA, dst=pixels)


def _unpremultiply(image: np.ndarray) -> None:
    """Divide the colour of ``image`` (BGRA) by its alpha, in place, a band of rows at a time;
    under alpha 0 it stays 0."""
    peak = np.iinfo(image.dtype).max
    for rows in row_bands(*image.shape[:2]):
        alpha = image[rows, :, 3:].astype(np.uint64)
        colour = (image[rows, :, :3] * np.uint64(peak) + alpha // 2) // np.maximum(alpha, 1)
        colour[np.broadcast_to(alpha == 0, colour.shape)] = 0  # what no alpha shows (a glow's light) is not white
        image[rows, :, :3] = np.minimum(colour, peak)


def read_rgb8(path: str | Path) -> np.ndarray:
    """An image file as 8-bit (H, W) grey or (H, W, 3) RGB, alpha dropped."""
    return read_rgba8(path)[0]


def read_rgba8(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file as 8-bit (H, W) grey or (H, W, 3) RGB, and its (H, W) alpha or None."""
    cv2 = opencv()
    pixels = read_image(path)
    if pixels.dtype != np.uint8:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(x / 257), no float copy
    alpha = pixels[..., -1] if pixels.ndim == 3 and pixels.shape[2] in (2, 4) else None
    if pixels.ndim == 3 and pixels.shape[2] in (1, 2):  # grey, and grey with alpha (a grey PNG's tRNS)
        return pixels[..., 0], alpha
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return pixels, alpha


class ImageSource(Source):
    """One still image as a single frame."""

    kind = "image"
    default_suffix = ".png"
    frame_count = 1
    bytes_per_sample = 2  # the planes are 16-bit whatever the file holds

    def __init__(self, location: str):
        self.location = location
        self.is_file = True
        self.header = image_header(location)
        # Refused rather than cut to the first picture: FFmpeg decodes no animated WebP (it does GIF
        # and APNG, which are upscaled as videos), and one picture is written a file.
        if self.header.pictures > 1 and self.header.format == "WEBP":
            apng = str(Path(location).with_suffix(".apng"))
            convert = f"from PIL import Image; Image.open({location!r}).save({apng!r}, save_all=True)"
            # srpipe's own interpreter, which has Pillow: the system's python3 may not
            raise SrpipeError(f"{location} is an animated WebP ({self.header.pictures} frames), which srpipe cannot "
                              f"read whole; make it an animated PNG first ({shlex.quote(sys.executable)} -c "
                              f"{shlex.quote(convert)}) and upscale that")
        if self.header.pictures > 1:
            raise SrpipeError(f"{location} holds {self.header.pictures} pages, and srpipe writes one picture a file; "
                              "split it into a file a page first (tiffsplit, or magick "
                              f"{shlex.quote(location)} page-%d.tif)")
        if self.header.thumbnails:  # copies of the picture made smaller to show it quickly, or its masks: not lost
            warnings.warn(f"{location}: its thumbnails and masks of the picture (pages that are no pictures of their "
                          "own) are left out; the picture is upscaled")
        # The size from the header, as shown: checked against the memory plan before anything is decoded.
        self.width, self.height = image_size(location) or self.header.size or (None, None)
        if self.width is not None and self.header.turned:
            self.width, self.height = self.height, self.width
        self.channels, self.decoded_bytes = image_layout(location)
        if self.header.transparent_grey is not None:  # given an alpha channel, and written as BGRA
            self.channels = 4
        self.samples_per_pixel = 4 if self.channels == 4 else 3
        self.bit_depth = 8

    def memory_needed(self, model_scale: int, out_size: tuple[int, int], output: str, traits: UpscalerTraits,
                      container_format: str | None = None) -> int:
        """Bytes the run of this picture allocates at its largest, beyond what the process holds
        before it decodes. Decoding, upscaling and writing run in threads of their own, and a
        thread's allocator keeps what the thread freed for its own reuse (see
        srpipe.memory.retain_freed_memory): the three threads' largest needs are added up.
        Measured peaks stay within it (tests/core/test_image_memory.py)."""
        in_px = self.width * self.height
        model_px, out_px = in_px * model_scale**2, out_size[0] * out_size[1]
        colour = self.channels != 1  # grey with alpha comes as BGRA: planned as colour
        planes = (3 if colour else 1) + (self.channels == 4)  # 16-bit grey or Y'CbCr planes, and alpha
        band = BAND_PIXELS * BAND_WORKING["colour" if colour else "grey"]
        # the file, OpenCV's samples, a band's float copies and the 16-bit planes (held to the end)
        decode = os.path.getsize(self.location) + in_px * (self.channels * self.decoded_bytes + 2 * planes) + band
        # the model's working memory (its traits; the thread keeps it for reuse, and the larger
        # planes that come after it are mapped afresh), and the largest of: the luma batch and the
        # model's output; at a fractional scale, the shrink (resize.shrink_plane: the model's output,
        # FFmpeg's frames of it and of the result, the result); the planes at the output size
        # (with FFmpeg's frame, kept for reuse)
        working = working_bytes(traits, 1, self.width, self.height, model_scale)
        # with alpha, first the colour under it filled (resize.fill_hidden_colour: its distance transform,
        # indices and copies of the planes)
        fill = FILL_WORKING * in_px if self.channels == 4 else 0
        upscale = working + max(fill, 2 * in_px + 2 * model_px,
                                4 * model_px + 4 * out_px if model_px != out_px else 0,
                                2 * planes * out_px + (2 * out_px if model_px != out_px else 0))
        suffix = picture_suffix(output, container_format)
        image = out_px * self.channels * output_depth(suffix, 8 * self.decoded_bytes) // 8
        # the image OpenCV encodes (a band's float copies made at a time) and what encoding takes,
        # in multiples of the image (docs/design-notes.md, "Memory"): libwebp holds its own copies;
        # the others write a file as they go, but a FIFO or device gets a copy encoded in memory
        encoding = 13 if suffix == ".webp" else 3 if output == "-" or writes_through(output) else 0.1
        write = int(image * (1 + encoding)) + band
        return decode + upscale + write + THREADS_WORKING

    def check_memory(self, upscaler, sizes: SizePlan | None, output: str, container_format: str | None = None) -> None:
        """Refuse, before decoding, a picture whose run would not fit in free memory (a
        container's limit included), saying how much it needs; written to ``output`` in the format
        :func:`picture_suffix` finds."""
        if not self.width or not self.height:
            return  # no size in the header: the decoder finds it
        scale = upscaler.scale
        size = (self.width * scale, self.height * scale)
        if sizes is not None:
            size = sizes.size(self.width, self.height, PLANE_FORMATS["yuv444p16le"])
        from srpipe.ensemble import ViewEnsemble

        needed = self.memory_needed(scale, size, output, UpscalerTraits.of(upscaler), container_format)
        asked = f"x{scale}" if sizes is None else f"to {size[0]}x{size[1]}"
        views = upscaler.count_for(self.width * self.height) if isinstance(upscaler, ViewEnsemble) else 1
        asked += f" through {views} views (fewer with --views)" if views > 1 else ""
        refuse_unless_fits(needed, f"{self.location}: a {self.width}x{self.height} image upscaled {asked}")

    def _decode(self) -> np.ndarray:
        """The image's samples as decoded: uint8 or uint16, BGR order, alpha last."""
        image = read_image(self.location, self.header)
        if self.width is not None and image.shape[:2] != (self.height, self.width):
            raise SrpipeError(f"{self.location} decodes to a size other than its header's; "
                              "check that it is a complete image")
        self.bit_depth = 8 if image.dtype == np.uint8 else 16
        self.height, self.width = image.shape[:2]
        return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image

    def items(self) -> Iterator[Frame]:
        yield self._frame()  # the decoded samples are freed before the frame is handed on

    def _frame(self) -> Frame:
        image = self._decode()
        to_16_bits = 257 if self.bit_depth == 8 else 1
        alpha = None
        if image.ndim == 3 and image.shape[2] in (2, 4):
            alpha = image[..., -1].astype(np.uint16)
            alpha *= to_16_bits
            image = image[..., :-1]
        # OpenCV expands grey+alpha to BGRA; equal channels mean a grey picture, unless its colour
        # profile is an RGB one (a phone's black-and-white photo), which a grey file cannot carry.
        rgb_profile = colour_space(self.header.colour_profile) == "RGB"
        if image.ndim == 2 or image.shape[2] == 1 or (not rgb_profile and np.array_equal(
                image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])):
            grey = (image if image.ndim == 2 else image[..., 0]).astype(np.uint16)
            grey *= to_16_bits
            return Frame((grey,), PLANE_FORMATS["gray16le"], True, alpha=alpha)
        planes = tuple(np.empty(image.shape[:2], np.uint16) for _ in range(3))
        for rows in row_bands(*image.shape[:2]):  # float copies of a band at a time, not of the picture
            rgb = image[rows, :, ::-1].astype(np.float64)  # OpenCV's BGR
            if to_16_bits != 1:
                rgb *= to_16_bits
            for plane, band in zip(planes, rgb_to_ycbcr(rgb)):
                plane[rows] = band
        return Frame(planes, PLANE_FORMATS["yuv444p16le"], True, alpha=alpha)


def output_depth(suffix: str, source_depth: int) -> int:
    """The bit depth an image is written in: the input's, where the output format holds it."""
    return 8 if suffix in EIGHT_BIT_ONLY else source_depth


def _opencv_can_name(path: Path) -> bool:
    """Whether OpenCV can open ``path`` by name: it takes names as UTF-8, and a name with bytes
    that are not (held by Python as lone surrogates) crashes it (OpenCV 5.1)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def whole_image_file(path: Path, suffix: str) -> bool:
    """Whether the image file OpenCV wrote at ``path`` reaches its format's end. OpenCV does not
    check the last flush of what it buffered: on a full disk it reports a file written that is a
    few kilobytes short, or empty. PNG ends with its IEND chunk, JPEG with its end marker; WebP
    and BMP give their length in their header; TIFF (libtiff writes unbuffered, and fails on
    its own) is not empty."""
    with open(path, "rb") as file:
        head = file.read(8)
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - 12))
        tail = file.read()
    if suffix == ".png":
        return tail == b"\0\0\0\0IEND\xaeB`\x82"
    if suffix in JPEG_SUFFIXES:
        return tail.endswith(b"\xff\xd9")
    if suffix == ".webp":
        return head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 == size
    if suffix == ".bmp":
        return head[:2] == b"BM" and int.from_bytes(head[2:6], "little") == size
    return size > 0


def _insert_bytes(file, at: int, data: bytes) -> None:
    """Put ``data`` at offset ``at`` of ``file``, open for reading and writing. What follows is
    moved along a block at a time, from the end, so that no copy of the file is held."""
    end = file.seek(0, os.SEEK_END)
    while end > at:
        start = max(at, end - (1 << 20))
        file.seek(start)
        block = file.read(end - start)
        file.seek(start + len(data))
        file.write(block)
        end = start
    file.seek(at)
    file.write(data)


def _jpeg_icc_segments(profile: bytes) -> bytes:
    """``profile`` as JPEG's APP2 segments, as libjpeg's jpeg_write_icc_profile writes it (ICC.1
    B.4): its mark, the piece's number from 1, the count of pieces, and up to JPEG_ICC_BYTES of it."""
    pieces = [profile[start:start + JPEG_ICC_BYTES] for start in range(0, len(profile), JPEG_ICC_BYTES)]
    return b"".join(b"\xff\xe2" + struct.pack(">H", 2 + 14 + len(piece)) + b"ICC_PROFILE\0"
                    + bytes((number, len(pieces))) + piece for number, piece in enumerate(pieces, 1))


def _insertion_point(suffix: str, read) -> int:
    """Where the bytes srpipe adds to what OpenCV wrote go (``read(offset, length)``: its bytes
    there): a PNG's after its IHDR, before the picture's data, where colour chunks must come; a
    JPEG's after its JFIF and EXIF segments (APP0, APP1), where OpenCV puts a profile."""
    if suffix not in JPEG_SUFFIXES:
        return PNG_HEADER_BYTES
    at = 2  # after the start of the image
    while (segment := read(at, 4))[:2] in (b"\xff\xe0", b"\xff\xe1"):
        at += 2 + int.from_bytes(segment[2:4], "big")
    return at


def _tiff_alpha_edit(read, size: int) -> tuple[tuple[int, bytes], bytes] | None:
    """For a TIFF of four samples a pixel that OpenCV wrote (classic TIFF: libtiff's "w"), which
    does not say the fourth is alpha: the edit to its header and the IFD to append, its own tags and
    ExtraSamples (338) saying the fourth is unassociated alpha, as Pillow's and GIMP's TIFFs do
    (libtiff warns without it, and editors may take it for a channel of its own); None where it
    says so. ``read(offset, length)``: the file's bytes there; ``size``: its length."""
    head = read(0, 8)
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", head[4:8])
    (count,) = struct.unpack(order + "H", read(ifd, 2))
    entries = read(ifd + 2, 12 * count + 4)  # a tag, its type, count and value (or its offset); the next IFD's offset
    tags = [entries[12 * index:12 * index + 12] for index in range(count)]
    if any(struct.unpack(order + "H", entry[:2])[0] == 338 for entry in tags):
        return None
    tags.append(struct.pack(order + "HHIH2x", 338, 3, 1, 2))  # a SHORT, one of them: 2, unassociated alpha
    tags.sort(key=lambda entry: struct.unpack(order + "H", entry[:2])[0])  # TIFF orders them so
    start = size + size % 2  # on a word boundary
    appended = b"\0" * (size % 2) + struct.pack(order + "H", count + 1) + b"".join(tags) + entries[-4:]
    return (4, struct.pack(order + "I", start)), appended


def picture_suffix(location: str, container_format: str | None) -> str:
    """The file suffix of the format a picture is written in to ``location``: standard output (-),
    a FIFO or a device in the one --format (``container_format``) names, else the one its name
    says, else PNG; a file in the one its name says (readers go by it), which --format may repeat
    but not contradict."""
    named = None
    if container_format is not None:
        named = PICTURE_FORMATS.get(container_format.lower())
        if named is None:
            raise SrpipeError(f"--format {container_format} is not a picture format srpipe writes; "
                              f"use one of {', '.join(sorted(PICTURE_FORMATS))}")
    suffix = "" if location == "-" else Path(location).suffix.lower()
    if location == "-" or writes_through(location):
        return named or (suffix if suffix in IMAGE_SUFFIXES else ".png")
    if named is not None and suffix in IMAGE_SUFFIXES and FORMAT_NAMES[named] != FORMAT_NAMES[suffix]:
        raise SrpipeError(f"--format {container_format} contradicts the output's name {location}, which "
                          f"says {FORMAT_NAMES[suffix]}; name it {named} or leave out --format")
    return suffix


class ImageSink(Sink):
    """Writes the one upscaled frame as an image, in the input's bit depth where the format allows."""

    def __init__(self, location: str, source: ImageSource, options: SinkOptions):
        self.location = location
        self.source = source
        self.suffix = picture_suffix(location, options.container_format)
        self.encoder = {".jpg": "jpeg", ".tif": "tiff"}.get(self.suffix, self.suffix.lstrip("."))
        self.output = AtomicOutput(location, options.overwrite) if location != "-" else None
        self.written = False

    def write_frame(self, frame: Frame) -> None:
        cv2 = opencv()
        depth = output_depth(self.suffix, self.source.bit_depth)
        if frame.alpha is not None and self.suffix in NO_ALPHA:
            warnings.warn(f"{self.location}: JPEG holds no transparency: the alpha channel is dropped "
                          "(write .png, .webp or .tif to keep it)")
        if depth < self.source.bit_depth:
            warnings.warn(f"{self.location}: {FORMAT_NAMES[self.suffix]} holds 8 bits a sample: the 16-bit "
                          "picture is written in 8 (write .png or .tif to keep 16)")
        profile = self.source.header.colour_profile
        if profile is not None and self.suffix not in KEEPS_METADATA:
            warnings.warn(f"{self.location}: srpipe writes no colour profile into {FORMAT_NAMES[self.suffix]}: the "
                          f"input's ICC profile is dropped (write .png, .jpg or .webp to keep it)")
            profile = None
        # An ICC profile names its colour space (bytes 16-20); a grey output (a colour picture with
        # equal channels) cannot carry an RGB one, which libpng and libjpeg readers would refuse.
        # WebP stores every picture as colour, and OpenCV grey with alpha (BGRA).
        grey = frame.format.chroma_shift is None and frame.alpha is None
        written_as = "GRAY" if grey and self.suffix != ".webp" else "RGB"
        fits = profile is not None and colour_space(profile) == written_as
        if profile is not None and not fits:
            warnings.warn(f"{self.location}: the input's ICC profile is for {colour_space(profile) or 'unknown'} "
                          f"colours and the picture is written as {'grey' if written_as == 'GRAY' else 'RGB'}: the "
                          "profile is dropped")
        # the ICC profile and EXIF, and TIFF's density (OpenCV's only format with options for it)
        # (a JPEG's profile srpipe writes: OpenCV's one segment holds up to 64 KB)
        metadata = (([cv2.IMAGE_METADATA_ICCP], [np.frombuffer(profile, np.uint8)])
                    if fits and self.suffix not in JPEG_SUFFIXES else ([], []))
        dpi = self._dpi()
        if dpi is not None and self.encoder == "tiff":
            metadata += ([cv2.IMWRITE_TIFF_RESUNIT, cv2.IMWRITE_TIFF_RESOLUTION_UNIT_INCH, cv2.IMWRITE_TIFF_XDPI,
                          round(dpi[0]), cv2.IMWRITE_TIFF_YDPI, round(dpi[1])],)
        image = _frame_to_image(frame, depth)
        exif = self.source.header.exif
        if exif is not None and self.suffix not in KEEPS_METADATA:
            warnings.warn(f"{self.location}: srpipe writes no EXIF into {FORMAT_NAMES[self.suffix]}: the input's "
                          "camera, date and place are dropped (write .png, .jpg or .webp to keep them)")
        elif exif is not None and (exif := upscaled_exif(exif, image.shape[1], image.shape[0])) is not None:
            if self.suffix in JPEG_SUFFIXES and len(exif) > JPEG_EXIF_BYTES:
                warnings.warn(f"{self.location}: the input's EXIF ({len(exif)} bytes) is more than a JPEG holds: it "
                              "is dropped (write .png or .webp to keep it)")
            else:
                metadata[0].append(cv2.IMAGE_METADATA_EXIF)
                metadata[1].append(np.frombuffer(exif, np.uint8))
        inserted = self._jpeg_profile(profile) if fits and self.suffix in JPEG_SUFFIXES else self._png_chunks(fits)
        # OpenCV writes a file as it encodes (imencode would hold up to 3 times the image more: its
        # growing buffer and the copy it returns); it picks the format by the name's suffix
        to_file = (self.output is not None and not self.output.direct and self.output.temp.suffix.lower() == self.suffix
                   and _opencv_can_name(self.output.temp))
        try:
            with quiet_stderr():
                written = to_file and cv2.imwriteWithMetadata(str(self.output.temp), image, *metadata)
        except cv2.error:
            written = False
        if not written:  # a FIFO or device, a link's target named otherwise, or a failure: in memory, to learn why
            self._write_encoded(cv2, image, metadata, inserted)
        elif not whole_image_file(self.output.temp, self.suffix):
            raise SrpipeError(f"cannot write {self.location}: the file came out cut short; check free space")
        else:
            try:
                with open(self.output.temp, "r+b") as file:
                    def read(offset: int, length: int) -> bytes:
                        file.seek(offset)
                        return file.read(length)

                    if inserted:
                        _insert_bytes(file, _insertion_point(self.suffix, read), inserted)
                    size = file.seek(0, os.SEEK_END)
                    replaced, appended = self._edits(image, read, size)
                    for offset, data in replaced + [(size, appended)]:
                        file.seek(offset)
                        file.write(data)
            except OSError as exc:
                raise SrpipeError(f"cannot write {self.location}: {exc.strerror}; check free space") from exc
        self.written = True

    def _edits(self, image: np.ndarray, read, size: int) -> tuple[list[tuple[int, bytes]], bytes]:
        """What OpenCV does not write into the picture it encoded, of ``size`` bytes (``read(offset,
        length)``: its bytes there): (offset, bytes to write there) pairs, and bytes to append.
        A TIFF's word that its fourth sample is alpha; JPEG's (JFIF's) and BMP's density."""
        dpi = self._dpi()
        if dpi is not None and self.suffix in JPEG_SUFFIXES and read(2, 4) == b"\xff\xe0\x00\x10" and \
                read(6, 5) == b"JFIF\0":  # the JFIF segment libjpeg writes first: its unit (1: inch) and density
            return [(13, struct.pack(">BHH", 1, *(round(d) for d in dpi)))], b""
        if dpi is not None and self.suffix == ".bmp" and read(14, 4) == struct.pack("<I", 40):  # BITMAPINFOHEADER
            return [(38, struct.pack("<ii", *(round(d / 0.0254) for d in dpi)))], b""  # pixels a metre
        if self.encoder == "tiff" and image.ndim == 3 and image.shape[2] == 4:
            edit = _tiff_alpha_edit(read, size)
            if edit is not None:
                return [edit[0]], edit[1]
        return [], b""

    def _dpi(self) -> tuple[float, float] | None:
        """The density the output is written with, in pixels an inch: the input's, turned as the
        picture is. Kept as it was, as image editors keep it when they resize (GIMP, Photoshop,
        ImageMagick): the upscale prints larger at the same density, and the EXIF, which srpipe
        keeps, says the same."""
        dpi = self.source.header.dpi
        if dpi is None or not all(0 < d <= MAX_DPI for d in dpi):  # none, or nonsense no format holds
            return None
        return dpi[::-1] if self.source.header.turned else dpi

    def _jpeg_profile(self, profile: bytes) -> bytes:
        """A JPEG output's ICC profile, as APP2 segments of up to 64 KB (a phone's or a printer's
        profile may be larger: OpenCV writes one segment and refuses those); a warning where it is
        more than the 255 segments JPEG counts."""
        if len(profile) > 255 * JPEG_ICC_BYTES:
            warnings.warn(f"{self.location}: the input's ICC profile ({len(profile)} bytes) is more than a JPEG "
                          "holds: it is dropped (write .png or .webp to keep it)")
            return b""
        return _jpeg_icc_segments(profile)

    def _png_chunks(self, profile_kept: bool) -> bytes:
        """The input PNG's colour and text chunks (:data:`PNG_COLOUR_CHUNKS`, :data:`PNG_TEXT_CHUNKS`)
        and the input's density (pHYs), whole, for a PNG output; for another, a warning of those
        dropped that say something."""
        chunks = self.source.header.png_chunks
        if self.suffix == ".png":
            dpi = self._dpi()
            density = [(b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in dpi), 1))] if dpi else []  # a metre's
            return b"".join(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
                            for kind, data in [*chunks, *density])
        kinds = {kind for kind, _ in chunks}
        # A JPEG's or WebP's colours are taken as sRGB's: gamma and primaries say something other
        # only where no sRGB chunk or kept profile takes their place; cICP (HDR) takes the place of all.
        dropped = kinds & {b"cICP"} or (set() if b"sRGB" in kinds or profile_kept else kinds & {b"gAMA", b"cHRM"})
        name = FORMAT_NAMES[self.suffix]
        if dropped:
            warnings.warn(f"{self.location}: srpipe writes no {' or '.join(sorted(k.decode() for k in dropped))} "
                          f"into {name}: the input PNG's word on how its colours are shown is dropped (write .png "
                          "to keep it)")
        if kinds & PNG_TEXT_CHUNKS:
            warnings.warn(f"{self.location}: srpipe writes no PNG text into {name}: the input's (a title, a comment, "
                          "a generator's settings) is dropped (write .png to keep it)")
        return b""

    def _write_encoded(self, cv2, image: np.ndarray, metadata: tuple[list, ...], inserted: bytes) -> None:
        size = f"{image.shape[1]}x{image.shape[0]}"
        try:
            with quiet_stderr():
                ok, encoded = cv2.imencodeWithMetadata(self.suffix, image, *metadata)
        except cv2.error:  # OpenCV's assertion text (several lines, C++ names) is not for users
            ok = False
        if not ok:
            raise SrpipeError(f"cannot encode {self.location} ({size}) as {self.suffix}; use .png")
        encoded = encoded.reshape(-1)

        def read(offset: int, length: int) -> bytes:
            return encoded[offset:offset + length].tobytes()

        replaced, appended = self._edits(image, read, encoded.size)
        for offset, data in replaced:
            encoded[offset:offset + len(data)] = np.frombuffer(data, np.uint8)
        at = _insertion_point(self.suffix, read) if inserted else 0
        parts = (encoded[:at], inserted, encoded[at:], appended)
        try:
            with (open(self.output.temp, "wb") if self.output is not None  # Python's open: Ctrl-C ends a wait
                  else contextlib.nullcontext(sys.stdout.buffer)) as file:  # for a FIFO's reader
                for part in parts:
                    write_all(file, part)  # from OpenCV's buffer, not a copy of it
                file.flush()
        except BrokenPipeError:
            raise  # a reader that left (-o /dev/stdout | head): the command line ends quietly
        except OSError as exc:
            raise SrpipeError(f"cannot write {self.location}: {exc.strerror}") from exc

    def finish(self) -> None:
        if not self.written:
            raise SrpipeError(f"nothing was upscaled from {self.source.location}")
        if self.output is not None:
            self.output.commit()

    def abort(self) -> None:
        if self.output is not None:
            self.output.discard()
