"""Plane resizing on the CPU with OpenCV (chroma and alpha, and the classical upscalers)."""

from __future__ import annotations

import cv2
import numpy as np

INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4, "nearest": cv2.INTER_NEAREST}


def resize_plane(plane: np.ndarray, width: int, height: int, max_value: int, method: str = "bicubic") -> np.ndarray:
    """Resize one 2-D plane to (height, width), clipped to ``max_value``."""
    out = cv2.resize(plane, (width, height), interpolation=INTERPOLATIONS[method])
    if max_value < np.iinfo(out.dtype).max:
        np.minimum(out, max_value, out=out)
    return out
