"""resize_plane: limited-range planes (video chroma) through swscale, within 2 levels of the
exact kernel (OpenCV's); tiny and full-range planes through OpenCV itself."""

import cv2
import numpy as np
import pytest

from srpipe.resize import SWSCALE_MIN_SIDE, resize_plane


def smooth_plane(shape, low, high, dtype, seed=0):
    """Chroma-like content: a smooth field (no full-swing noise) inside the limited range."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, shape[0] // 4), max(2, shape[1] // 4)))
    field = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.round(low + field * (high - low)).astype(dtype)


@pytest.mark.parametrize("shape, size", [((90, 160), (320, 180)), ((33, 17), (65, 34)), ((45, 80), (120, 67))])
@pytest.mark.parametrize("bit_depth", [8, 10])
def test_limited_range_planes_match_the_exact_kernel(shape, size, bit_depth):
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scale = 1 << (bit_depth - 8)
    plane = smooth_plane(shape, 16 * scale, 240 * scale, dtype)
    out = resize_plane(plane, *size, (1 << bit_depth) - 1, full_range=False)
    exact = cv2.resize(plane, size, interpolation=cv2.INTER_CUBIC)
    assert out.dtype == dtype and out.shape == (size[1], size[0])
    assert np.abs(out.astype(int) - exact).max() <= 2 * scale


def test_tiny_planes_take_the_exact_kernel():
    plane = smooth_plane((SWSCALE_MIN_SIDE - 3, 4), 16, 240, np.uint8)
    out = resize_plane(plane, 8, 6, 255, full_range=False)
    assert np.array_equal(out, cv2.resize(plane, (8, 6), interpolation=cv2.INTER_CUBIC))


def test_samples_above_max_value_are_clipped():
    """A 10-bit plane carried in a 16-bit format's range is still held to its own largest value."""
    plane = np.full((40, 60), 1000, np.uint16)
    plane[::7, ::5] = 1020
    assert resize_plane(plane, 120, 80, 1000, full_range=False).max() == 1000


@pytest.mark.parametrize("full_range", [True, False])
def test_a_plane_that_shrinks_on_one_side_is_antialiased(full_range):
    """A target size shorter than the input's chroma (--width 1.5x, --height 1/3x): rows that
    alternate between the extremes become their mean, where OpenCV's cubic, which samples
    without widening its kernel, would keep stripes."""
    low, high = (0, 255) if full_range else (16, 240)
    plane = np.full((60, 80), low, np.uint8)
    plane[::2] = high
    out = resize_plane(plane, 120, 20, 255, full_range=full_range)
    assert out.shape == (20, 120)
    inner = out[2:-2, 4:-4].astype(float)
    assert abs(inner.mean() - (low + high) / 2) < 4 and inner.std() < 4
    aliased = cv2.resize(plane, (120, 20), interpolation=cv2.INTER_CUBIC)[2:-2, 4:-4].astype(float)
    assert aliased.std() > 40  # what the test would see without the antialiasing
