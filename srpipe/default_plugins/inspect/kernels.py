"""Classic hand-made convolution kernels applied with ``conv2d``, shown beside the original."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srpipe.plotting import new_figure


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


KERNELS: dict[str, np.ndarray] = {
    "box-blur": np.full((3, 3), 1 / 9),
    "gaussian-blur": gaussian_kernel(5, 1.0),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
    "laplacian-edge": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float),
    "sobel-x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float),
    "sobel-y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float),
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=float),
}
EDGE_KERNELS = ("laplacian-edge", "sobel-x", "sobel-y")  # signed responses, shown as magnitude
SHOWN_SIDE = 1024  # pixels on a picture's longer side, about what a panel of the figure shows


def apply_kernel(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlate each channel of ``image`` (H, W, C) float with ``kernel`` (k, k) through
    ``torch.nn.functional.conv2d``, replicating the edges so the size is kept."""
    channels = image.shape[2]
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
    weight = torch.from_numpy(kernel.astype(np.float32))[None, None].repeat(channels, 1, 1, 1)
    pad = kernel.shape[0] // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(x, weight, groups=channels)[0].numpy().transpose(1, 2, 0)


def displayable(name: str, filtered: np.ndarray) -> np.ndarray:
    """Filtered values mapped to [0, 1]: magnitude scaled to its maximum for edge kernels,
    clipped otherwise."""
    if name in EDGE_KERNELS:
        magnitude = np.abs(filtered)
        return magnitude / (magnitude.max() or 1.0)
    return np.clip(filtered, 0.0, 1.0)


def describe(kernel: np.ndarray) -> str:
    """The kernel's values, row by row, when small enough to read."""
    if kernel.size > 9:
        return f"{kernel.shape[0]}x{kernel.shape[1]}, sum {kernel.sum():.3g}"
    return "[" + "; ".join(" ".join(f"{v:.3g}" for v in row) for row in kernel) + "]"


def kernel_figures(image: np.ndarray, image_name: str, out_dir: str | Path) -> list:
    """(path, draw) of one PNG per kernel (:func:`srpipe.plotting.save_figures`), with the
    original and the filtered image side by side.

    ``image``: (H, W) grey or (H, W, 3) RGB, uint8.
    """
    height, width = image.shape[:2]
    if max(height, width) > SHOWN_SIDE:  # shrunk to what a panel shows: a kernel's few pixels are seen there,
        import cv2  # and the filtered copies of a photo at full size took gigabytes (400 bytes a pixel)

        scale = SHOWN_SIDE / max(height, width)
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        image_name = f"{image_name}, shrunk from {width}x{height}"
    pixels = (image[..., None] if image.ndim == 2 else image).astype(np.float32) / 255.0
    return [(Path(out_dir) / f"{name}.png", functools.partial(_kernel_figure, pixels, image_name, name, kernel))
            for name, kernel in KERNELS.items()]


def _kernel_figure(pixels: np.ndarray, image_name: str, name: str, kernel: np.ndarray):
    height, width = pixels.shape[:2]
    shown = displayable(name, apply_kernel(pixels, kernel))
    figure = new_figure(1100, int(np.clip(550 * height / width, 300, 1000)) + 120)
    for i, (picture, caption) in enumerate([(pixels, f"original {image_name}"),
                                            (shown, f"{name} ({kernel.shape[0]}x{kernel.shape[1]})")]):
        axes = figure.add_subplot(1, 2, i + 1)
        grey = picture.shape[2] == 1
        axes.imshow(picture[..., 0] if grey else picture, cmap="gray" if grey else None, vmin=0, vmax=1)
        axes.set_title(caption, fontsize=10)
        axes.set_xlabel("x (pixels)")
        axes.set_ylabel("y (pixels)")
    figure.suptitle(f"{name} kernel applied with conv2d: {describe(kernel)}", fontsize=10)
    figure.tight_layout()
    return figure
