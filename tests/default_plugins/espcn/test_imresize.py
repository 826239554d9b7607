import numpy as np
import pytest

from srpipe.default_plugins.espcn.imresize import cubic, imresize, resize_matrix


def test_cubic_kernel_values():
    assert cubic(np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5])) == pytest.approx(
        [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0])


def test_upscale_by_two_by_hand():
    # out x=1..4 sits at u = x/2 + 1/4; weights from cubic() at the tap distances,
    # out-of-range taps mirrored (symmetric padding): [0, 1] -> see values below.
    img = np.array([[0.0, 1.0], [0.0, 1.0]])
    out = imresize(img, 2)
    assert out.shape == (4, 4)
    assert out[0] == pytest.approx([-0.09375, 0.203125, 0.796875, 1.09375])
    assert np.allclose(out, out[0])


def test_constant_stays_constant():
    img = np.full((30, 27, 3), 117.0)
    for s in (1 / 3, 1 / 2, 1 / 4, 2, 3, 4):
        out = imresize(img, s)
        assert out.shape[:2] == (int(np.ceil(30 * s - 1e-9)), int(np.ceil(27 * s - 1e-9)))
        assert np.allclose(out, 117.0)


def test_downscale_keeps_a_ramp_in_the_interior():
    # the antialiased kernel is symmetric and normalised, so it reproduces linear functions;
    # 0-based output k of a /2 downscale sits at input position 2k + 0.5
    ramp = np.tile(np.arange(24.0), (24, 1))
    out = imresize(ramp, 1 / 2)
    assert out.shape == (12, 12)
    assert out[5, 3:9] == pytest.approx(2 * np.arange(3, 9) + 0.5)


def test_flips_and_transpose_commute():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (18, 24))
    for s in (1 / 3, 3):
        out = imresize(img, s)
        assert np.allclose(imresize(img[::-1], s), out[::-1])
        assert np.allclose(imresize(img[:, ::-1], s), out[:, ::-1])
        assert np.allclose(imresize(img.T, s), out.T)


def test_antialias_widens_the_kernel():
    # output 11 (1-based) of a /3 downscale sits exactly on input 32 (0-based 31); the
    # antialiased kernel 1/3 * cubic(d/3) is zero at d = +-3 and |d| >= 6
    m = resize_matrix(60, 20, 1 / 3)
    assert list(np.flatnonzero(m[10])) == [26, 27, 29, 30, 31, 32, 33, 35, 36]
    assert m.sum(axis=1) == pytest.approx(np.ones(20))
    assert list(np.flatnonzero(resize_matrix(60, 20, 1 / 3, antialias=False)[10])) == [31]
