"""Colour and image conventions of the SR literature (MATLAB ``rgb2ycbcr``, mod-crop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srpipe.images import read_rgb8


def rgb2y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB ``rgb2ycbcr`` on 8-bit values: float64 Y in [16, 235].

    ``img`` is (H, W, 3) RGB or (H, W) grey, in [0, 255]; grey counts as R = G = B.
    """
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 2:
        return 16.0 + x * (219.0 / 255.0)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def load_y(path: str | Path) -> np.ndarray:
    """Read an image file and return its luma as float64, as the published SR code does.

    RGB images give MATLAB ``rgb2ycbcr`` Y in [16, 235]. A grey image is used as it is
    (the reference MATLAB scripts skip ``rgb2ycbcr`` when there is one channel); this is what
    reproduces the published Set14 numbers, whose ``bridge`` is grey.
    """
    pixels = read_rgb8(path)
    return pixels.astype(np.float64) if pixels.ndim == 2 else rgb2y(pixels)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
