"""Turn any picture into what a classifier expects, saying what was changed."""

from __future__ import annotations

import cv2
import numpy as np


def border_level(grey: np.ndarray) -> float:
    """The median of the outermost pixels: the background level of a centred object."""
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge))


def to_model_input(pixels: np.ndarray, shape: tuple[int, int, int],
                   dark_background: bool) -> tuple[np.ndarray, list[str]]:
    """``pixels`` (H, W) grey or (H, W, 3) RGB uint8 -> ((C, H', W') float32 in [0, 1], notes).

    Colour is converted to the network's channels, a non-square picture is padded to a
    square with its background level, then resized; for a network trained on light objects
    on black (MNIST) a light background is inverted. Each change is described in ``notes``.
    """
    channels, height, width = shape
    notes = []
    image = pixels
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        notes.append("converted colour to grey")
    elif channels == 3 and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
        notes.append("converted grey to RGB")
    h, w = image.shape[:2]
    if h != w and height == width:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        side, fill = max(h, w), int(round(border_level(grey)))
        top, left = (side - h) // 2, (side - w) // 2
        image = cv2.copyMakeBorder(image, top, side - h - top, left, side - w - left,
                                   cv2.BORDER_CONSTANT, value=(fill,) * 3)
        notes.append(f"padded {w}x{h} to a {side}x{side} square")
    if image.shape[:2] != (height, width):
        interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
        before = f"{image.shape[1]}x{image.shape[0]}"
        image = cv2.resize(image, (width, height), interpolation=interpolation)
        notes.append(f"resized {before} to {width}x{height}")
    if dark_background and channels == 1 and border_level(image) > 127:
        image = 255 - image
        notes.append("inverted (light background; the model expects light objects on black)")
    array = image.astype(np.float32) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), notes
