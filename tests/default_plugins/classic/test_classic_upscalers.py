"""bicubic and lanczos: the CPU path (FFmpeg's scale filter) agrees with OpenCV's kernels and
with the ffmpeg CLI; the torch (CUDA) path agrees with the CPU path."""

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from srpipe.default_plugins.classic.upscaler import ClassicUpscaler, resampling_matrix
from srpipe.resize import PlaneScaler


def smooth_image(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max if dtype == np.uint8 else 1023
    image = cv2.GaussianBlur(rng.random(shape) * top, (5, 5), 1.2)
    return image.astype(dtype)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_torch_path_matches_the_cpu_path_within_one_level(method, scale):
    """Tolerance: swscale rounds its weights and sums to fixed point, so samples may differ
    by 1 (on 13% of them for Lanczos x3, under 9% otherwise)."""
    luma = np.stack([smooth_image((37, 53), seed=s) for s in range(2)])
    cpu = ClassicUpscaler(method, scale, "cpu").upscale(luma, bit_depth=8, full_range=False)
    torch_ = ClassicUpscaler(method, scale, "cpu", backend="torch").upscale(luma, bit_depth=8, full_range=False)
    diff = np.abs(cpu.astype(int) - torch_)
    assert cpu.shape == (2, 37 * scale, 53 * scale) and cpu.dtype == np.uint8
    assert diff.max() <= 1 and diff.mean() < 0.15


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_ten_bit_stays_in_range_and_matches(method):
    luma = smooth_image((20, 30), dtype=np.uint16)[None]
    luma[0, :, :5] = 1023  # a hard edge makes the kernels overshoot
    luma[0, :, 5:8] = 0
    cpu = ClassicUpscaler(method, 2, "cpu").upscale(luma, bit_depth=10, full_range=False)
    torch_ = ClassicUpscaler(method, 2, "cpu", backend="torch").upscale(luma, bit_depth=10, full_range=False)
    assert cpu.dtype == np.uint16 and cpu.max() == 1023
    assert np.abs(cpu.astype(int) - torch_).max() <= 2  # a half of an 8-bit level


def test_resampling_rows_sum_to_one_and_interpolate_constants():
    matrix = resampling_matrix(7, 3, "lanczos")
    assert matrix.shape == (21, 7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    flat = np.full((1, 9, 9), 77, np.uint8)
    assert np.all(ClassicUpscaler("bicubic", 4, "cpu", backend="torch").upscale(flat, bit_depth=8, full_range=False)
                  == 77)


OPENCV = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_cpu_path_matches_opencvs_kernel_within_one_8_bit_level(method, scale, dtype):
    """Off by 1 on at most 13% of 8-bit samples, by 2 of 1023 on 10-bit ones."""
    plane = smooth_image((41, 67), dtype=dtype, seed=3)
    top = 255 if dtype == np.uint8 else 1023
    plane[:, :6] = top  # edges overshoot: clipped
    want = np.minimum(cv2.resize(plane, (67 * scale, 41 * scale), interpolation=OPENCV[method]), top)
    got = ClassicUpscaler(method, scale).upscale(plane[None], bit_depth=8 if dtype == np.uint8 else 10,
                                                 full_range=False)[0]
    assert got.dtype == dtype and got.shape == want.shape and got.max() == top
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= (1 if dtype == np.uint8 else 2) and (diff > 0).mean() < 0.15


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
@pytest.mark.parametrize("scale", [2, 3])
def test_lanczos_equals_the_ffmpeg_clis_scale_filter(scale):
    """What `srpipe bench` compares against: the same filter, the same output (FFmpeg 5.1's CLI
    and PyAV's FFmpeg gave identical samples; within 1 level allows for other versions)."""
    plane = smooth_image((45, 62), seed=5)
    plane[:, :5] = 255
    command = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "62x45", "-i", "-",
               "-vf", f"scale=iw*{scale}:ih*{scale}:flags=lanczos:param0=4", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    done = subprocess.run(command, input=plane.tobytes(), capture_output=True, check=True)
    ffmpeg = np.frombuffer(done.stdout, np.uint8).reshape(45 * scale, 62 * scale)
    ours = ClassicUpscaler("lanczos", scale).upscale(plane[None], bit_depth=8, full_range=False)[0]
    assert np.abs(ours.astype(int) - ffmpeg).max() <= 1


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (17, 31)])
def test_tiny_and_odd_planes_keep_their_levels(size):
    """Constants stay constant in the scale filter (no range conversion), at any size and depth."""
    for depth, value in ((8, 77), (10, 940), (16, 60000)):
        plane = np.full(size, value, np.uint8 if depth == 8 else np.uint16)
        out = np.empty((size[0] * 3, size[1] * 2 + 1), plane.dtype)
        PlaneScaler((size[1], size[0]), (size[1] * 2 + 1, size[0] * 3), depth, "bicubic").resize(plane, out)
        assert out.shape == (size[0] * 3, size[1] * 2 + 1) and out.dtype == plane.dtype
        assert np.all(out == value)


def text_image(low, high):
    image = np.zeros((40, 60), np.uint8)
    cv2.putText(image, "Ag", (2, 32), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 255, 2)
    return (low + image.astype(int) * (high - low) // 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_full_swing_planes_keep_the_exact_kernel(method):
    """swscale clips after its horizontal pass: on 0/255 text 11-12 levels off the exact kernel,
    on full-swing noise up to 29. Full-range planes therefore go through OpenCV (at most 1 off);
    limited-range text stays within 2 of the exact kernel through swscale."""
    noise = np.random.default_rng(0).integers(0, 256, (40, 60)).astype(np.uint8)
    for image, full_range, tolerance in ((text_image(0, 255), True, 1), (noise, True, 1),
                                         (text_image(16, 235), False, 2)):
        cpu = ClassicUpscaler(method, 2).upscale(image[None], bit_depth=8, full_range=full_range)
        exact = ClassicUpscaler(method, 2, backend="torch").upscale(image[None], bit_depth=8, full_range=full_range)
        assert np.abs(cpu.astype(int) - exact).max() <= tolerance


def test_one_upscaler_follows_a_change_of_plane_size():
    """Batch workers keep a model across files of different sizes."""
    upscaler = ClassicUpscaler("lanczos", 2)
    for shape in ((20, 30), (33, 17), (20, 30)):
        plane = smooth_image(shape, seed=shape[0])[None]
        want = ClassicUpscaler("lanczos", 2).upscale(plane, bit_depth=8, full_range=False)
        assert np.array_equal(upscaler.upscale(plane, bit_depth=8, full_range=False), want)
