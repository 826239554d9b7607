"""bicubic and lanczos: the torch (CUDA) path agrees with OpenCV, the CPU path."""

import cv2
import numpy as np
import pytest

from srpipe_plugins.classic import ClassicUpscaler, phase_kernels, resampling_matrix, upscale_polyphase


def smooth_image(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max if dtype == np.uint8 else 1023
    image = cv2.GaussianBlur(rng.random(shape) * top, (5, 5), 1.2)
    return image.astype(dtype)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_torch_path_matches_opencv_within_one_level(method, scale):
    """Tolerance: OpenCV rounds its 8-bit weights to fixed point, so samples may
    differ by 1; on average by less than 0.1."""
    luma = np.stack([smooth_image((37, 53), seed=s) for s in range(2)])
    opencv = ClassicUpscaler(method, scale, "cpu").upscale(luma, bit_depth=8, full_range=False)
    torch_ = ClassicUpscaler(method, scale, "cpu", backend="torch").upscale(luma, bit_depth=8, full_range=False)
    diff = np.abs(opencv.astype(int) - torch_)
    assert opencv.shape == (2, 37 * scale, 53 * scale)
    assert diff.max() <= 1 and diff.mean() < 0.1


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_ten_bit_stays_in_range_and_matches(method):
    luma = smooth_image((20, 30), dtype=np.uint16)[None]
    luma[0, :, :5] = 1023  # a hard edge makes the kernels overshoot
    luma[0, :, 5:8] = 0
    opencv = ClassicUpscaler(method, 2, "cpu").upscale(luma, bit_depth=10, full_range=False)
    torch_ = ClassicUpscaler(method, 2, "cpu", backend="torch").upscale(luma, bit_depth=10, full_range=False)
    assert opencv.dtype == np.uint16 and opencv.max() == 1023
    assert np.abs(opencv.astype(int) - torch_).max() <= 1


def test_resampling_rows_sum_to_one_and_interpolate_constants():
    matrix = resampling_matrix(7, 3, "lanczos")
    assert matrix.shape == (21, 7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    flat = np.full((1, 9, 9), 77, np.uint8)
    assert np.all(ClassicUpscaler("bicubic", 4, "cpu", backend="torch").upscale(flat, bit_depth=8, full_range=False) == 77)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_polyphase_lanczos_matches_opencvs_resize(scale, dtype):
    # Measured on a 360p photo: at most 1 level apart, on 0.4% (x2, x4) to 7% (x3) of the samples
    plane = smooth_image((41, 67), dtype=dtype, seed=3)
    top = 255 if dtype == np.uint8 else 1023
    plane[:, :6] = top  # edges overshoot: clipped
    want = np.minimum(cv2.resize(plane, (67 * scale, 41 * scale), interpolation=cv2.INTER_LANCZOS4), top)
    got = upscale_polyphase(plane, scale, phase_kernels(scale, "lanczos"), top)
    assert got.dtype == dtype and got.shape == want.shape and got.max() == top
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.1
