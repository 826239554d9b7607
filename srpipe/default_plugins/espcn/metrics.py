"""PSNR and SSIM on 8-bit-scale luma with a border crop, as in the SR literature."""

from __future__ import annotations

import cv2
import numpy as np


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side."""
    return img[border:-border, border:-border] if border else img


# What identical images score: a cap, so that means over frames stay finite where one frame comes
# out exact (a black one in a fade), as video codecs' own tools cap it
MAX_PSNR_DB = 100.0


def psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR in dB of two images in [0, 255] after cropping ``border`` pixels, at most MAX_PSNR_DB."""
    d = shave(np.asarray(a, np.float64), border) - shave(np.asarray(b, np.float64), border)
    mse = float(np.mean(d * d))
    return MAX_PSNR_DB if mse == 0 else min(MAX_PSNR_DB, 10.0 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, 'valid' window) of [0, 255] images."""
    x = shave(np.asarray(a, np.float64), border)
    y = shave(np.asarray(b, np.float64), border)
    if min(x.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {x.shape}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    win = g @ g.T

    def filt(z):
        return cv2.filter2D(z, -1, win)[5:-5, 5:-5]

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())
