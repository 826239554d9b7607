"""The clean or the still-image weights for a picture (srpipe.default_plugins.espcn.still_pick):
the shipped looks tell a picture shrunk with antialiasing from one shrunk without, each stream
gets one choice, and the clean weights load only when chosen."""

import json

import cv2
import numpy as np
import pytest

from srpipe.default_plugins.espcn import load
from srpipe.default_plugins.espcn.degrade import downscale
from srpipe.default_plugins.espcn.shipped import still_pick_path
from srpipe.default_plugins.espcn.still_pick import FEATURES, PickedWeights, StillPick, features, pieces


def photo_like(size=384, seed=0):
    """A generated picture with what photos have: smooth shading, hard edges of shapes and
    fine texture (the shipped looks were fitted on photographs, none of which is here)."""
    rng = np.random.default_rng(seed)
    shading = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 24)
    picture = 128 + 60 * shading / np.abs(shading).max()
    for _ in range(40):
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v) for v in rng.integers(6, 60, 2))
        cv2.ellipse(picture, center, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(30, 220)), -1)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 0.8)
    picture += 12 * texture / texture.std()
    return np.clip(cv2.GaussianBlur(picture, (0, 0), 0.6), 16, 235)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_shipped_look_tells_antialiased_from_aliased_shrinks(scale):
    pick = StillPick.load(still_pick_path(scale))
    for seed in range(3):
        hr = photo_like(seed=seed)
        hr = hr[:hr.shape[0] - hr.shape[0] % scale, :hr.shape[1] - hr.shape[1] % scale]
        aliased = downscale(hr, scale, "opencv-cubic")
        assert not pick.looks_clean(aliased), f"seed {seed}: an aliased shrink taken for a clean one"
        smooth = downscale(hr, scale, "matlab-bicubic")
        assert pick.not_clean_probability(smooth) < pick.not_clean_probability(aliased)


def test_features_are_the_same_at_every_bit_depth_and_bounded_for_flat_pictures():
    lr = downscale(photo_like(), 3, "matlab-bicubic")
    np.testing.assert_allclose(features(lr.astype(np.uint16) << 2, bit_depth=10), features(lr), rtol=1e-4, atol=1e-4)
    flat = features(np.full((40, 60), 100, np.uint8))
    assert flat.shape == (len(FEATURES),) and np.isfinite(flat).all()


@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (15, 300)])
def test_a_picture_too_small_to_tell_gets_the_image_weights_without_a_warning(shape, recwarn):
    look = StillPick.load(still_pick_path(3))
    assert look.not_clean_probability(np.full(shape, 90, np.uint8)) == 1.0
    assert not look.looks_clean(np.full(shape, 90, np.uint8))
    assert not recwarn.list



def test_a_picture_is_looked_at_in_its_middle_whole_or_in_pieces_that_vote():
    picture = np.arange(600 * 700, dtype=np.uint32).reshape(600, 700)
    (middle,) = pieces(picture, None)
    np.testing.assert_array_equal(middle, picture[44:556, 94:606])
    cut = pieces(picture, 64)
    assert len(cut) == 64 and all(piece.shape == (64, 64) for piece in cut)
    np.testing.assert_array_equal(cut[9], picture[44 + 64:44 + 128, 94 + 64:94 + 128])
    assert [piece.shape for piece in pieces(picture[:40, :50], 64)] == [(40, 50)]  # smaller than a piece



def test_with_pieces_the_median_of_their_votes_decides(monkeypatch):
    """Two pieces that look antialiased outvote one that does not (and the mean would not)."""
    import srpipe.default_plugins.espcn.still_pick as still_pick

    monkeypatch.setattr(still_pick, "features", lambda piece, bit_depth=8: np.r_[piece.mean(), np.zeros(6)])
    look = StillPick(3, (1.0, 0, 0, 0, 0, 0, 0), 0.0, 0.5, 64)
    picture = np.zeros((64, 192), np.uint8)
    picture[:, 128:] = 40  # pieces scoring 0, 0 and 40: probabilities 0.5, 0.5 and about 1
    assert look.not_clean_probability(picture) == pytest.approx(0.5)
    assert not look.looks_clean(picture)
    picture[:, :64] = 0
    picture[:, 64:128] = 0
    look = StillPick(3, (1.0, 0, 0, 0, 0, 0, 0), -5.0, 0.5, 64)  # 0.0067, 0.0067, 1: the median looks clean
    assert look.looks_clean(picture)

class Counting:
    scale = 3

    def __init__(self, tag):
        self.tag, self.calls = tag, 0

    def upscale(self, luma, *, bit_depth, full_range):
        self.calls += 1
        return np.full((luma.shape[0], luma.shape[1] * 3, luma.shape[2] * 3), self.tag, luma.dtype)


class Fixed:
    """A look that says what ``rule(luma)`` says."""

    def __init__(self, rule):
        self.rule = rule

    def looks_clean(self, luma, bit_depth=8):
        return self.rule(luma)


def test_each_stream_gets_one_choice_and_the_clean_weights_load_once_when_chosen():
    loads = []

    def load_clean():
        loads.append(1)
        return Counting(1)

    picked = PickedWeights(Counting(2), load_clean, Fixed(lambda luma: luma.mean() > 100))
    rng = np.random.default_rng(0)
    dark, bright = rng.integers(0, 50, (1, 8, 8), dtype=np.uint8), rng.integers(150, 250, (1, 8, 8), dtype=np.uint8)
    video = picked.for_stream()
    assert video.upscale(dark, bit_depth=8, full_range=False)[0, 0, 0] == 2
    assert video.upscale(bright, bit_depth=8, full_range=False)[0, 0, 0] == 2  # no switch midway
    assert video.chosen == "image" and loads == []
    picture = picked.for_stream()
    assert picture.upscale(bright, bit_depth=8, full_range=False)[0, 0, 0] == 1
    assert picture.chosen == "clean" and loads == [1]
    for stream in (picture.for_stream(), picked.for_stream(), picked.for_stream()):  # children and siblings
        assert stream.upscale(bright, bit_depth=8, full_range=False)[0, 0, 0] == 1
    assert loads == [1]  # loaded once, shared by every stream after


def test_a_flat_first_frame_gets_the_other_weights_and_a_warm_up_leaves_the_choice_open():
    """A black intro tells nothing: the weights that hold up on both kinds. What a warm-up sends
    (zeros, every block shape) goes to a copy, so the stream's first real frame still decides
    (tile reuse gives it whole)."""
    from srpipe.reuse import with_reuse

    look = StillPick.load(still_pick_path(2))
    assert look.not_clean_probability(np.full((64, 64), 16, np.uint8)) == 1.0
    picked = PickedWeights(Counting(2), lambda: Counting(1), Fixed(lambda luma: luma.mean() > 100)).for_stream()
    assert picked.upscale(np.full((1, 8, 8), 200, np.uint8), bit_depth=8, full_range=False)[0, 0, 0] == 1
    flat = PickedWeights(Counting(2), lambda: Counting(1), look).for_stream()
    assert flat.upscale(np.full((1, 64, 64), 16, np.uint8), bit_depth=8, full_range=False)[0, 0, 0] == 2
    assert flat.chosen == "image"

    class Radius(Counting):
        receptive_radius = 2  # so that video through it reuses tiles

    stream = PickedWeights(Radius(2), lambda: Radius(1), Fixed(lambda luma: luma.mean() > 100)).for_stream()
    reusing = with_reuse(stream)
    reusing.warm_up(48, 32)
    assert stream.chosen is None and stream.otherwise.calls > 1  # warmed up, on a copy
    bright = np.random.default_rng(3).integers(150, 250, (1, 32, 48), dtype=np.uint8)
    assert reusing.upscale(bright, bit_depth=8, full_range=False)[0, 0, 0] == 1 and stream.chosen == "clean"


def test_the_clean_weights_run_only_where_tile_reuse_can_keep_their_output():
    """The picker declares ``otherwise``'s radius and grid; clean weights that read farther, or
    need a coarser grid, would make tile reuse keep outputs they change: ``otherwise`` runs."""
    def clean_like(radius, alignment):
        clean = Counting(1)
        clean.receptive_radius, clean.crop_alignment = radius, alignment
        return clean

    otherwise = Counting(2)
    otherwise.receptive_radius, otherwise.crop_alignment = 7, 2
    frame = np.full((1, 8, 8), 200, np.uint8)
    for radius, alignment, runs in ((7, 1, 1), (7, 2, 1), (5, 1, 1), (8, 1, 2), (7, 4, 2), (None, 1, 2)):
        picked = PickedWeights(otherwise, lambda: clean_like(radius, alignment), Fixed(lambda luma: True)).for_stream()
        assert (picked.receptive_radius, picked.crop_alignment) == (7, 2)
        assert picked.upscale(frame, bit_depth=8, full_range=False)[0, 0, 0] == runs, (radius, alignment)


def test_video_through_espcn_image_reuses_tiles(tmp_path, cli_run):
    """Both weights read the same radius, which the picker declares: a video given
    ``-m espcn-image`` keeps tile reuse."""
    from srpipe.testing import make_fixed_camera_clip

    clip = make_fixed_camera_clip(tmp_path / "camera.mp4", width=320, height=192, frames=8)  # tiles cheaper than frames
    for scale in (2, 3, 4):
        image, clean = load(scale, kind="image"), load(scale, kind="clean")
        assert image.receptive_radius == clean.receptive_radius
    result = cli_run("upscale", clip, "-m", "espcn-image", "-o", tmp_path / "out.mp4", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["reuse"]["reused"] > 0
    assert payload["variant"] in ("clean weights", "image weights")  # told through the tile reuse wrapper


def test_espcn_image_picks_and_espcn_image_xn_does_not():
    picked = load(3, kind="image", pick=True)
    assert isinstance(picked, PickedWeights)
    assert not isinstance(load(3, kind="image"), PickedWeights)
    hr = photo_like()
    out = picked.for_stream().upscale(downscale(hr, 3, "opencv-cubic")[None], bit_depth=8, full_range=False)
    assert out.shape == (1, 384, 384)


def test_the_summary_and_json_say_which_weights_ran(tmp_path, cli_run):
    picture = tmp_path / "shrunk.png"
    cv2.imwrite(str(picture), downscale(photo_like(), 4, "opencv-cubic"))  # aliased: the image weights
    result = cli_run("upscale", picture, "-m", "espcn", "-s", "4", "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    assert "espcn-image (image weights, 8 views) x4" in result.output  # a small picture: every view (srpipe.ensemble)
    result = cli_run("upscale", picture, "-m", "espcn", "-s", "4", "-o", tmp_path / "out.png", "--overwrite", "--json",
                     "--exact")
    assert json.loads(result.stdout.strip().splitlines()[-1])["variant"] == "image weights"
    picked = PickedWeights(Counting(2), lambda: Counting(1), Fixed(lambda luma: True)).for_stream()
    assert picked.variant is None  # nothing settled before a frame
    picked.upscale(np.arange(64, dtype=np.uint8).reshape(1, 8, 8), bit_depth=8, full_range=False)
    assert picked.variant == "clean weights"
    result = cli_run("upscale", picture, "-m", "espcn-image-x4", "-o", tmp_path / "plain.png", "--json")
    assert "variant" not in json.loads(result.stdout.strip().splitlines()[-1])  # one variant: nothing to say


class Planned(Counting):
    """A Counting upscaler with the traits the memory plan and the summary read."""

    def __init__(self, tag, backend, per_pixel):
        super().__init__(tag)
        self.backend, self.per_pixel = backend, per_pixel

    def working_bytes(self, frames, width, height):
        return frames * width * height * self.per_pixel


def test_the_plan_counts_the_wider_weights_and_the_summary_names_what_ran():
    """Where the clean weights load at once (``espcn-lossless``: they need more memory than the
    fast network), the memory plan takes the larger need; the backend named is the chosen weights'."""
    narrow, wide = Planned(2, "openvino-int8", 10), Planned(1, "openvino-bf16", 40)
    lazy = PickedWeights(narrow, lambda: wide, Fixed(lambda luma: True))
    assert lazy.working_bytes(2, 8, 8) == 2 * 64 * 10  # the clean weights are not loaded yet
    eager = PickedWeights(narrow, lambda: wide, Fixed(lambda luma: luma.mean() > 100), "video", load_clean_now=True)
    assert eager.working_bytes(2, 8, 8) == 2 * 64 * 40
    bright = np.random.default_rng(2).integers(150, 250, (1, 8, 8), dtype=np.uint8)
    dark = bright // 4
    stream = eager.for_stream()
    assert stream.backend == "openvino-int8" and stream.variant is None
    stream.upscale(bright, bit_depth=8, full_range=False)
    assert (stream.backend, stream.variant) == ("openvino-bf16", "clean weights")
    other = eager.for_stream()
    other.upscale(dark, bit_depth=8, full_range=False)
    assert (other.backend, other.variant) == ("openvino-int8", "video weights")


def test_espcn_lossless_picks_between_the_clean_weights_and_espcns_own_path():
    picked = load(2, kind="lossless", pick=True)
    assert picked.otherwise.variant == "fast network" and picked._clean  # the fast network, and clean loaded
    assert picked.receptive_radius == picked.clean().receptive_radius == picked.otherwise.receptive_radius
    exact = load(2, kind="lossless", pick=True, exact=True)
    assert exact.otherwise.variant is None and exact.otherwise.macs_per_lr_pixel == 66688  # the video weights
    smooth = downscale(photo_like(), 2, "matlab-bicubic")
    stream = picked.for_stream()
    out = stream.upscale(np.rint(smooth)[None].astype(np.uint8), bit_depth=8, full_range=False)
    assert stream.variant == "clean weights" and out.shape == (1, 384, 384)
