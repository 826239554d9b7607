"""Turn any picture into what a classifier expects, saying what was changed."""

from __future__ import annotations

import cv2
import numpy as np


def border_level(grey: np.ndarray) -> float:
    """The median of the outermost pixels: the background level of a centred object."""
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge))


def flatten_alpha(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, str]:
    """``image`` (grey or RGB uint8) over a plain background where ``alpha`` says it is transparent:
    white under dark opaque parts, black under light ones (a black digit cut out on a transparent
    sticker stays a dark digit on light, where dropping the alpha left black on black)."""
    weight = alpha.astype(np.float32) / 255
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    opaque = float((grey * weight).sum() / weight.sum()) if weight.sum() else 255.0
    background = 255.0 if opaque < 128 else 0.0
    weight = weight if image.ndim == 2 else weight[..., None]
    flat = np.rint(image * weight + background * (1 - weight)).astype(np.uint8)
    return flat, f"put its transparent parts on {'white' if background else 'black'}"


def to_model_input(pixels: np.ndarray, shape: tuple[int, int, int], dark_background: bool,
                   alpha: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """``pixels`` (H, W) grey or (H, W, 3) RGB uint8 (``alpha``: its (H, W) opacity, if any) ->
    ((C, H', W') float32 in [0, 1], notes).

    A non-square picture is resized to fit the network's square (first: what follows works on
    that, whatever the picture's size) and padded with its background level; transparent parts
    are put on a background that contrasts with the opaque ones; colour is converted to the
    network's channels; for a network trained on light objects on black (MNIST) a light
    background is inverted. Each change is described in ``notes``.
    """
    channels, height, width = shape
    notes = []
    image = pixels
    h, w = image.shape[:2]
    square = h != w and height == width
    fit = height / max(h, w) if square else None
    target = (max(1, round(w * fit)), max(1, round(h * fit))) if square else (width, height)
    if (w, h) != target:
        interpolation = cv2.INTER_AREA if h > target[1] or w > target[0] else cv2.INTER_LINEAR
        image = cv2.resize(image, target, interpolation=interpolation)
        alpha = cv2.resize(alpha, target, interpolation=interpolation) if alpha is not None else None
        notes.append(f"resized {w}x{h} to {target[0]}x{target[1]}")
    if alpha is not None and alpha.min() < 255:
        image, note = flatten_alpha(image, alpha)
        notes.append(note)
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        notes.append("converted colour to grey")
    elif channels == 3 and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
        notes.append("converted grey to RGB")
    if square and target != (width, height):
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        fill = int(round(border_level(grey)))
        top, left = (height - target[1]) // 2, (width - target[0]) // 2
        image = cv2.copyMakeBorder(image, top, height - target[1] - top, left, width - target[0] - left,
                                   cv2.BORDER_CONSTANT, value=(fill,) * 3)
        notes.append(f"padded to {width}x{height} with its background")
    if dark_background and channels == 1 and border_level(image) > 127:
        image = 255 - image
        notes.append("inverted (light background; the model expects light objects on black)")
    array = image.astype(np.float32) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), notes
