import numpy as np
import pytest
from PIL import Image

from srpipe.default_plugins.espcn.color import load_y, modcrop, rgb2y
from srpipe.default_plugins.espcn.evaluate import evaluate_folder
from srpipe.default_plugins.espcn.metrics import MAX_PSNR_DB, psnr, ssim


def test_rgb2y_is_matlab_bt601():
    assert rgb2y(np.array([[[0, 0, 0], [255, 255, 255]]])) == pytest.approx(np.array([[16, 235]]))
    assert rgb2y(np.array([[[255, 0, 0]]]))[0, 0] == pytest.approx(16 + 65.481)
    assert rgb2y(np.array([[0, 255]])) == pytest.approx(np.array([[16, 235]]))


def test_grey_files_are_used_as_they_are(tmp_path):
    Image.fromarray(np.array([[0, 200]], np.uint8)).save(tmp_path / "g.png")
    assert load_y(tmp_path / "g.png") == pytest.approx(np.array([[0, 200]]))


def test_psnr_by_hand():
    a = np.zeros((8, 8))
    b = a.copy()
    b[2:6, 2:6] = 2.0  # MSE 4 inside a border of 2
    b[0, :] = 99.0  # ignored: in the border
    assert psnr(a, b, border=2) == pytest.approx(10 * np.log10(255**2 / 4))
    assert psnr(a, a) == MAX_PSNR_DB  # identical: the cap, so means stay finite


def test_ssim_bounds():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (32, 32))
    assert ssim(a, a, 3) == pytest.approx(1.0)
    assert ssim(a, 255 - a, 3) < 0


def test_evaluate_folder_by_hand(tmp_path):
    # pure red 40x35: HR Y = 16 + 65.481 = 81.481 everywhere after a mod-crop to 39x33;
    # LR and bicubic are constant 81 after rounding, so the error is 0.481 everywhere
    Image.fromarray(np.full((40, 35, 3), (255, 0, 0), np.uint8)).save(tmp_path / "red.png")
    calls = []

    def upscale(lr):
        calls.append(lr.shape)
        assert lr.dtype == np.uint8 and (lr == 81).all()
        return np.full((lr.shape[0], lr.shape[1] * 3, lr.shape[2] * 3), 90, np.uint8)

    r = evaluate_folder(tmp_path, 3, upscale)
    assert calls == [(1, 13, 11)]
    (img,) = r["images"]
    assert img["bicubic_psnr"] == pytest.approx(20 * np.log10(255 / 0.481))
    assert img["psnr"] == pytest.approx(20 * np.log10(255 / (90 - 81.481)))
    assert r["mean"]["psnr"] == img["psnr"]


def test_modcrop():
    assert modcrop(np.zeros((13, 10, 3)), 3).shape == (12, 9, 3)
