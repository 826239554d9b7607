"""Still images: colour, grey, alpha and 16 bits survive the Y'CbCr round trip."""

import os

import cv2
import numpy as np
import pytest

from srpipe.images import rgb_to_ycbcr, ycbcr_to_rgb
from srpipe.testing import make_plugin_manager, make_test_image
from srpipe.upscaling import upscale


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager()


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def psnr(a, b, peak=255.0):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(peak**2 / mse)


def test_colour_conversion_round_trip_is_exact_on_8_bit():
    rgb = np.random.default_rng(1).integers(0, 256, (50, 50, 3)).astype(np.float64) * 257
    back = ycbcr_to_rgb(*rgb_to_ycbcr(rgb))
    assert np.abs(np.rint(back / 257) - rgb / 257).max() == 0


def test_rgb_image_close_to_rgb_bicubic(tmp_path, pm):
    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    result = upscale(str(source), model="bicubic", scale=2, pm=pm)
    assert result.output == str(tmp_path / "in_x2.png")
    out = read(result.output)
    reference = cv2.resize(read(source), (80, 60), interpolation=cv2.INTER_CUBIC)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    assert psnr(out, reference) > 30  # chroma is bicubic in Y'CbCr rather than in RGB


def test_grey_stays_grey_and_matches_opencv(tmp_path, pm):
    source = make_test_image(tmp_path / "grey.png", mode="grey")
    out = read(upscale(str(source), scale=3, pm=pm).output)
    reference = cv2.resize(read(source), (120, 90), interpolation=cv2.INTER_CUBIC)
    assert out.ndim == 2
    assert np.abs(out.astype(int) - reference).max() <= 1


@pytest.mark.parametrize("mode", ["rgba", "greya"])
def test_alpha_is_upscaled_and_kept(tmp_path, pm, mode):
    source = make_test_image(tmp_path / "a.png", mode=mode)
    out = read(upscale(str(source), scale=2, pm=pm).output)
    assert out.shape == (60, 80, 4)
    alpha = cv2.resize(read(source)[..., 3], (80, 60), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[..., 3].astype(int) - alpha).max() <= 1


def test_16_bit_png_stays_16_bit(tmp_path, pm):
    source = make_test_image(tmp_path / "deep.png", bit_depth=16)
    out = read(upscale(str(source), scale=2, pm=pm).output)
    assert out.dtype == np.uint16 and out.shape == (60, 80, 3)
    reference = cv2.resize(read(source), (80, 60), interpolation=cv2.INTER_CUBIC)
    assert psnr(out, reference, peak=65535.0) > 30


def test_jpeg_input_writes_png_by_default(tmp_path, pm):
    source = make_test_image(tmp_path / "photo.jpg")
    result = upscale(str(source), scale=4, pm=pm)
    assert result.output.endswith("photo_x4.png")
    assert read(result.output).shape == (120, 160, 3)


def test_names_that_are_not_utf8_are_read_and_written(tmp_path):
    """A file name's bytes need not be UTF-8 (Python holds them as lone surrogates), and OpenCV,
    which takes names as UTF-8, crashed on one: the picture goes through srpipe's own file I/O."""
    from conftest import run_srpipe

    folder = tmp_path / "in"
    folder.mkdir()
    odd = folder / os.fsdecode(b"\xff.png")
    make_test_image(folder / "plain.png", width=20, height=10)
    (folder / "plain.png").rename(odd)  # OpenCV could not write it by this name either
    out = tmp_path / os.fsdecode(b"\xfe-big.png")
    done = run_srpipe("upscale", odd, "-o", out)
    assert done.returncode == 0, done.stderr.decode()
    assert cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_UNCHANGED).shape == (20, 40, 3)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

    done = run_srpipe("batch", folder, tmp_path / "batch")
    assert done.returncode == 0, done.stderr.decode()
    written = np.fromfile(tmp_path / "batch" / odd.name, np.uint8)
    assert cv2.imdecode(written, cv2.IMREAD_UNCHANGED).shape == (20, 40, 3)
