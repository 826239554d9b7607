"""Frames as Y'CbCr planes, and the pixel formats they come in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PlaneFormat:
    """A planar Y'CbCr (or grey) layout: bit depth and chroma subsampling."""

    name: str  # the FFmpeg pix_fmt name
    bit_depth: int
    chroma_shift: tuple[int, int] | None  # log2 of (horizontal, vertical) subsampling; None: grey

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bit_depth <= 8 else np.uint16)

    @property
    def max_value(self) -> int:
        return (1 << self.bit_depth) - 1

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a chroma plane for a luma plane of this size."""
        sx, sy = self.chroma_shift
        return -(-width >> sx), -(-height >> sy)


def _formats() -> dict[str, PlaneFormat]:
    shifts = {"420": (1, 1), "422": (1, 0), "444": (0, 0)}
    table = {}
    for sub, shift in shifts.items():
        table[f"yuv{sub}p"] = PlaneFormat(f"yuv{sub}p", 8, shift)
        for depth in (10, 12, 16):
            name = f"yuv{sub}p{depth}le"
            table[name] = PlaneFormat(name, depth, shift)
    table["gray"] = PlaneFormat("gray", 8, None)
    for depth in (10, 12, 16):
        table[f"gray{depth}le"] = PlaneFormat(f"gray{depth}le", depth, None)
    return table


PLANE_FORMATS = _formats()

# FFmpeg's planar formats with alpha, by the format of their colour planes: the alpha is a
# fourth plane of the same size as the luma and depth, always full range.
ALPHA_FORMATS = {
    name.replace("yuv", "yuva", 1): name
    for name in PLANE_FORMATS
    if name.startswith("yuv") and name != "yuv420p12le"  # FFmpeg has no yuva420p12le
}
ALPHA_OF = {colour: with_alpha for with_alpha, colour in ALPHA_FORMATS.items()}

# Deprecated full-range aliases that decoders (MJPEG) still produce.
FULL_RANGE_ALIASES = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


# Where subsampled chroma lies, by FFmpeg's names (AVChromaLocation; H.264's and HEVC's
# chroma_sample_loc_type + 1): horizontally on the first luma sample of its pair ("...left") or between
# the pair; vertically between the rows of its pair, on the first ("top...") or on the second ("bottom...")
CHROMA_LOCATIONS = ("left", "center", "topleft", "top", "bottomleft", "bottom")


@dataclass
class Frame:
    """One picture: Y (and Cb, Cr) planes, an optional alpha plane, and its timing.

    ``pts`` counts ``time_base`` units as the decoder gave them; they travel
    unchanged to the encoder.
    """

    planes: tuple[np.ndarray, ...]
    format: PlaneFormat
    full_range: bool
    pts: int | None = None
    time_base: Fraction | None = None
    alpha: np.ndarray | None = None  # at the format's bit depth, 0 transparent to its max_value opaque
    duration: int | None = None  # how long it is shown, in time_base units (a GIF's last frame); None: not known
    # Where the chroma samples lie (subsampled chroma): centred on their luma block, as JPEG and MJPEG
    # place them; False: as MPEG-2, H.264, HEVC, VP9 and AV1 do by default, on the first luma sample of
    # each pair across (and between the rows down, for 4:2:0).
    chroma_centred: bool = False
    # Or exactly, by FFmpeg's name (CHROMA_LOCATIONS), where the stream says so (UHD and HDR video's
    # "topleft"); None: as chroma_centred says. Given, it sets chroma_centred ("center" is centred).
    chroma_location: str | None = None
    # The closed captions (A/53: CEA-608/708) that came with the frame from srpipe's reader: a PyAV
    # frame made from the decoder's, which holds them (PyAV copies a frame's side data only into
    # frames made from it), for srpipe's writer to give to the encoder; None: none
    captions: Any = None

    def __post_init__(self):
        if self.chroma_location is not None:
            if self.chroma_location not in CHROMA_LOCATIONS:
                known = ", ".join(CHROMA_LOCATIONS)
                raise ValueError(f"chroma_location {self.chroma_location!r} is not one of {known}")
            self.chroma_centred = self.chroma_location == "center"

    @property
    def chroma_siting(self) -> str:
        """Where the chroma lies, by FFmpeg's name: ``chroma_location``, or as ``chroma_centred`` says
        where that is all it says ("left" or "center": a plugin may have set ``chroma_centred`` since)."""
        if self.chroma_location in (None, "left", "center"):
            return "center" if self.chroma_centred else "left"
        return self.chroma_location

    @property
    def height(self) -> int:
        return self.planes[0].shape[0]

    @property
    def width(self) -> int:
        return self.planes[0].shape[1]

    def with_planes(self, planes, alpha=None) -> "Frame":
        return replace(self, planes=tuple(planes), alpha=alpha)
