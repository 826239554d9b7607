"""Plane resizing on the CPU: OpenCV for chroma, alpha and full-range planes, and FFmpeg's
``scale`` filter (libswscale) for the classical upscalers on limited-range video."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np

from srpipe.video import plane_view

# srpipe's kernels in the scale filter's terms: Keys' cubic with a = -0.75 (B = 0, C = 0.75,
# as OpenCV's INTER_CUBIC) and Lanczos with a = 4 (as OpenCV's INTER_LANCZOS4)
SWSCALE_FLAGS = {"bicubic": "bicubic:param0=0:param1=0.75", "lanczos": "lanczos:param0=4"}
OPENCV_INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
GRAY_FORMATS = {8: "gray", 9: "gray9le", 10: "gray10le", 12: "gray12le", 14: "gray14le", 16: "gray16le"}


class PlaneScaler:
    """Planes of one size and bit depth resized by FFmpeg's ``scale`` filter on one thread,
    as ``ffmpeg -vf scale=W:H:flags=...`` resizes the luma of a clip. Not for concurrent use.

    It resizes faster than OpenCV's kernels on one thread (docs/design-notes.md). swscale clips its intermediate after the horizontal pass, so where the
    kernel overshoots past the format's range it parts from the exact kernel: limited-range
    video (headroom above 235) stays within 1-2 levels of it, 0/255 text is up to 12 off and
    full-swing noise up to 29, which is why full-range planes are resized with OpenCV.
    """

    def __init__(self, size: tuple[int, int], out_size: tuple[int, int], bit_depth: int, method: str):
        if bit_depth not in GRAY_FORMATS:
            raise ValueError(f"no {bit_depth}-bit gray format for FFmpeg's scale filter")
        (width, height), (out_width, out_height) = size, out_size
        self.settings = (size, out_size, bit_depth, method)
        self.format = GRAY_FORMATS[bit_depth]
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(width=width, height=height, format=self.format, time_base=Fraction(1, 25))
        scaler = self.graph.add("scale", f"{out_width}:{out_height}:flags={SWSCALE_FLAGS[method]}:threads=1")
        source.link_to(scaler)
        scaler.link_to(self.graph.add("buffersink"))
        self.graph.configure()

    def resize(self, plane: np.ndarray, out: np.ndarray) -> None:
        """``plane`` (uint8 for 8-bit, else uint16) resized into ``out``."""
        self.graph.push(av.VideoFrame.from_ndarray(plane, format=self.format))
        out[...] = plane_view(self.graph.pull().planes[0], plane.dtype)


def resize_plane(plane: np.ndarray, width: int, height: int, max_value: int, method: str = "bicubic") -> np.ndarray:
    """Resize one 2-D plane to (height, width) with OpenCV, clipped to ``max_value``."""
    out = cv2.resize(plane, (width, height), interpolation=OPENCV_INTERPOLATIONS[method])
    if max_value < np.iinfo(out.dtype).max:
        np.minimum(out, max_value, out=out)
    return out
