"""A still picture through a network that declares ``self_ensemble``: the rounded mean of its
outputs over the picture's flipped and transposed views, as many as the budget allows."""

import json
import re

import cv2
import numpy as np
import pytest

from srpipe.ensemble import ENSEMBLE_MACS, ViewEnsemble, _unview, _view, views_within
from srpipe.models import UpscalerTraits


class Lopsided:
    """Nearest neighbour x2 plus a ramp across each output row: no flip leaves it unchanged, as
    no learned network is left unchanged."""

    scale = 2
    macs_per_lr_pixel = 10

    def __init__(self):
        self.calls = 0

    def upscale(self, luma, *, bit_depth, full_range):
        self.calls += 1
        out = luma.repeat(2, axis=1).repeat(2, axis=2).astype(np.int32)
        out += np.arange(out.shape[2]) % 7
        return np.clip(out, 0, 2**bit_depth - 1).astype(luma.dtype)


def picture(height=6, width=10, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, 200, (1, height, width)).astype(dtype)


def test_the_eight_views_are_distinct_and_each_is_undone_exactly():
    luma = picture()
    views = [_view(luma, index) for index in range(8)]
    assert len({(v.shape, v.tobytes()) for v in map(np.ascontiguousarray, views)}) == 8
    for index, view in enumerate(views):
        assert np.array_equal(_unview(view, index), luma)


@pytest.mark.parametrize("dtype, bit_depth", [(np.uint8, 8), (np.uint16, 10)])
@pytest.mark.parametrize("views", [8, 4, 2])
def test_the_output_is_the_rounded_mean_of_the_views(dtype, bit_depth, views):
    luma = picture(dtype=dtype)
    inner = Lopsided()
    budget = views * inner.macs_per_lr_pixel * luma.size  # exactly room for that many
    ensemble = ViewEnsemble(inner, "model 'lopsided'", budget=budget)
    out = ensemble.upscale(luma, bit_depth=bit_depth, full_range=False)
    outputs = [_unview(Lopsided().upscale(np.ascontiguousarray(_view(luma, i)), bit_depth=bit_depth,
                                          full_range=False), i).astype(np.int64) for i in range(views)]
    expected = (sum(outputs) + views // 2) // views
    assert out.dtype == dtype and np.array_equal(out, expected)
    assert inner.calls == views and ensemble.views == views
    assert not np.array_equal(out, outputs[0])  # the mean, not the first view


class Overwriting(Lopsided):
    """Overwrites its input, as docs/plugins.md allows: the array is srpipe's own copy."""

    def upscale(self, luma, *, bit_depth, full_range):
        out = super().upscale(luma, bit_depth=bit_depth, full_range=full_range)
        luma[...] = 0
        return out


class Square(Lopsided):
    """Takes only the shape it was made for, as a network exported with a fixed input would."""

    def upscale(self, luma, *, bit_depth, full_range):
        out = super().upscale(luma, bit_depth=bit_depth, full_range=full_range)
        return out if luma.shape[1] < luma.shape[2] else out.transpose(0, 2, 1)


def test_each_view_is_a_copy_of_its_own_and_the_picture_is_left_as_it_was():
    """The first view was the caller's array: a model that overwrote it gave the other seven views
    a black picture (16 where the picture's mean was 128)."""
    luma = picture()
    kept = luma.copy()
    out = ViewEnsemble(Overwriting(), "model 'o'", budget=8 * 10 * luma.size).upscale(luma, bit_depth=8,
                                                                                      full_range=False)
    expected = ViewEnsemble(Lopsided(), "model 'l'", budget=8 * 10 * luma.size).upscale(kept.copy(), bit_depth=8,
                                                                                        full_range=False)
    assert np.array_equal(out, expected) and np.array_equal(luma, kept)


def test_a_model_that_refuses_a_transposed_view_is_told_with_the_view_and_what_to_do():
    from srpipe.errors import SrpipeError

    luma = picture()
    with pytest.raises(SrpipeError, match=r"^model 's' \(given the picture flipped or transposed, view 5 of 8; --exact "
                                          r"runs only the picture itself\) returned uint8 \(1, 12, 20\); expected"):
        ViewEnsemble(Square(), "model 's'", budget=8 * 10 * luma.size).upscale(luma, bit_depth=8, full_range=False)


def test_a_large_picture_or_an_undeclared_cost_gets_one_view_the_networks_own_output():
    luma = picture()
    inner = Lopsided()
    one = ViewEnsemble(inner, "model 'lopsided'", budget=2 * inner.macs_per_lr_pixel * luma.size - 1)
    assert np.array_equal(one.upscale(luma, bit_depth=8, full_range=False),
                          Lopsided().upscale(luma, bit_depth=8, full_range=False))
    assert (one.views, inner.calls) == (1, 1)
    assert views_within(None, 10) == views_within(0, 10) == 1
    assert views_within(100, 1) == 8 and views_within(100, ENSEMBLE_MACS // 300) == 2


def test_the_views_are_planned_in_memory_and_named_in_the_variant():
    inner = Lopsided()
    ensemble = ViewEnsemble(inner, "model 'lopsided'", budget=8 * 10 * 60)
    traits = UpscalerTraits.of(ensemble)
    assert traits.working_bytes(1, 10, 6) == UpscalerTraits.of(inner).working_bytes_per_output_pixel * 240 + 240 * 10
    assert traits.working_bytes(1, 1000, 1000) == UpscalerTraits.of(inner).working_bytes_per_output_pixel * 4 * 10**6
    assert traits.variant is None
    ensemble.upscale(picture(), bit_depth=8, full_range=False)
    assert UpscalerTraits.of(ensemble).variant == "8 views"


def test_a_picture_through_espcn_takes_its_views_and_exact_takes_the_network_once(tmp_path, cli_run):
    """The image weights on Set5-sized pictures: about 0.1 dB from the views (docs/espcn.md);
    --exact is the network's own output."""
    rng = np.random.default_rng(1)
    bgr = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3)).astype(np.uint8), (5, 5), 1.5)
    cv2.imwrite(str(tmp_path / "p.png"), bgr)
    runs = {}
    for name, options in [("views", ()), ("exact", ("--exact",)), ("image", ("-m", "espcn-image-x2"))]:
        out = tmp_path / f"{name}.png"
        done = cli_run("upscale", tmp_path / "p.png", "-m", "espcn", *options, "-o", out, "--json")
        assert done.exit_code == 0, done.output
        runs[name] = (json.loads(done.output), cv2.imread(str(out)))
    assert runs["views"][0]["variant"].endswith(", 8 views")
    assert "views" not in runs["exact"][0]["variant"]
    assert not np.array_equal(runs["views"][1], runs["exact"][1])
    if runs["exact"][0]["variant"] == "image weights":  # the picture's look chose them: the same pass alone
        assert np.array_equal(runs["exact"][1], runs["image"][1])


def test_eval_scores_the_views_by_default_and_the_network_alone_with_score_exact(tmp_path, cli_run):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(2)
    cv2.imwrite(str(folder / "a.png"), cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8),
                                                        (5, 5), 1.0))
    scores = {}
    for score in ("default", "exact"):
        done = cli_run("eval", "-m", "espcn", "--data", folder, "--score", score, "--json")
        assert done.exit_code == 0, done.output
        scores[score] = json.loads(done.output)["mean"]["psnr"]
    assert scores["default"] != scores["exact"]


def test_views_sets_how_many_and_is_refused_where_it_means_nothing(tmp_path, cli_run):
    from srpipe.default_plugins.espcn.shipped import shipped_weights
    from srpipe.testing import make_test_video

    rng = np.random.default_rng(3)
    cv2.imwrite(str(tmp_path / "p.png"), cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3)).astype(np.uint8),
                                                          (5, 5), 1.5))
    out = {}
    for name, options in [("two", ("--views", "2")), ("one", ("--views", "1")), ("exact", ("--exact",)),
                          ("eight", ())]:
        done = cli_run("upscale", tmp_path / "p.png", "-m", "espcn", *options, "-o", tmp_path / f"{name}.png", "--json")
        assert done.exit_code == 0, done.output
        out[name] = (json.loads(done.output)["variant"], cv2.imread(str(tmp_path / f"{name}.png")))
    assert out["two"][0].endswith(", 2 views") and out["eight"][0].endswith(", 8 views")
    assert "views" not in out["one"][0] and np.array_equal(out["one"][1], out["exact"][1])
    assert not np.array_equal(out["two"][1], out["eight"][1]) and not np.array_equal(out["two"][1], out["one"][1])
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    for arguments, told in [
        ((clip, "-m", "espcn", "--views", "4"), f"Error: {clip} is read as video, whose frames run the model once "
                                                "each; --views is for a picture file: leave it out"),
        ((tmp_path / "p.png", "-m", "bicubic", "--views", "4"),
         "Error: model 'bicubic' runs no views (the weights -m espcn picks for a picture do); leave out --views"),
        ((tmp_path / "p.png", "-m", "espcn", "--weights", shipped_weights(2, "image"), "--views", "4"),
         "Error: model 'espcn' with --weights runs no views (the weights -m espcn picks for a picture do); leave out "
         "--views"),
    ]:
        done = cli_run("upscale", *arguments, "-o", tmp_path / "refused.png")
        assert done.exit_code == 1 and done.output.strip().splitlines()[-1] == told, done.output
        assert not (tmp_path / "refused.png").exists()


def test_a_picture_refused_for_memory_says_how_many_views_it_was_planned_with(tmp_path, monkeypatch):
    import srpipe.memory
    from srpipe.errors import SrpipeError
    from srpipe.images import ImageSource

    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((150, 200, 3), np.uint8))
    monkeypatch.setattr(srpipe.memory, "available_memory", lambda: 10**6)
    for count, told in [(8, "a 200x150 image upscaled x2 through 8 views (fewer with --views) needs about"),
                        (1, "a 200x150 image upscaled x2 needs about")]:
        with pytest.raises(SrpipeError, match=re.escape(told)):
            ImageSource(str(tmp_path / "p.png")).check_memory(ViewEnsemble(Lopsided(), "model 'l'", count=count), None,
                                                              str(tmp_path / "out.png"))
