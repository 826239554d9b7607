"""Degradations (real x264 / libjpeg), the pan-clip training data, and `srpipe eval` on them."""

import copy
import json

import cv2
import numpy as np
import pytest
import torch
from test_training import draw_images

from srpipe.default_plugins.espcn.color import load_y, modcrop
from srpipe.default_plugins.espcn.data import PatchSampler, cached_degraded_pairs, degraded_clips
from srpipe.default_plugins.espcn.degrade import (
    KERNELS,
    degrade_frames,
    downscale,
    make_degraded_lr,
    parse_degradation,
    swscale_resize,
    x264_roundtrip,
)
from srpipe.default_plugins.espcn.evaluate import bicubic_upscale
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.default_plugins.espcn.training import main
from srpipe.errors import SrpipeError
from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

from conftest import run_srpipe


def frames_with_motion(n=5, h=48, w=64):
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.uniform(16, 235, (h + 4 * n, w + 4 * n)), (5, 5), 1.0)
    return np.stack([big[2 * i:2 * i + h, 3 * i:3 * i + w] for i in range(n)]).round().astype(np.uint8)


def test_x264_really_encodes():
    frames = frames_with_motion()
    lossy = x264_roundtrip(frames, 35)
    assert lossy.shape == frames.shape and lossy.dtype == np.uint8
    assert np.abs(lossy.astype(int) - frames).mean() > 1  # artefacts, in every frame
    assert all((a != b).any() for a, b in zip(lossy, frames))
    assert (x264_roundtrip(frames, 0) == frames).all()  # crf 0 is lossless
    odd = x264_roundtrip(frames[:, :47, :63], 23)  # padded for 4:2:0, cropped back
    assert odd.shape == (5, 47, 63)
    assert psnr(odd, frames[:, :47, :63]) > 30


def test_jpeg_and_degradation_specs():
    frame = frames_with_motion(1)
    jpeg = degrade_frames(frame, "jpeg:quality=20")
    assert jpeg.shape == frame.shape and (jpeg != frame).any()
    assert parse_degradation("x264:crf=30") == ("x264", {"crf": 30})
    assert parse_degradation("x264") == ("x264", {"crf": 23})
    for bad in ("x265:crf=3", "x264:qp=3", "jpeg:quality=0", "x264:crf=abc"):
        with pytest.raises(SrpipeError):
            parse_degradation(bad)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_shrinks(kernel):
    hr = frames_with_motion(1, 48, 72)[0].astype(np.float64)
    lr = downscale(hr, 3, kernel)
    assert lr.shape == (16, 24) and lr.dtype == np.uint8
    assert abs(lr.mean() - hr.mean()) < 2


def test_opencv_cubic_is_the_non_antialiased_shrink():
    hr = frames_with_motion(1)[0].astype(np.float64)
    expected = np.clip(np.rint(cv2.resize(hr.astype(np.float32), (32, 24), interpolation=cv2.INTER_CUBIC)), 0, 255)
    assert (downscale(hr, 2, "opencv-cubic") == expected).all()
    assert (downscale(hr, 2, "opencv-cubic") != downscale(hr, 2, "matlab-bicubic")).any()


def test_pan_clip_frames_line_up_with_their_hr_windows(tmp_path):
    folder = draw_images(tmp_path / "img", 2, 3)
    paths = sorted(folder.iterdir())
    hrs, frames = degraded_clips(paths, 2, variants=2, frames=4, kernels=("matlab-bicubic",), lossless=1.0)
    assert len(frames) == 2 * 2 * 4
    for lr, k, y, x, _ in frames:  # lossless: each LR frame is exactly its window shrunk
        window = hrs[k][y:y + 2 * lr.shape[0], x:x + 2 * lr.shape[1]]
        assert (lr == downscale(window, 2, "matlab-bicubic")).all()
    assert (hrs[0] == modcrop(load_y(paths[0]), 2).astype(np.float32)).all()
    # compressed clips differ from the clean shrink, and the cache gives back the same pairs
    settings = dict(variants=2, frames=4, kernels=("swscale-bicubic",), lossless=0.0, crf_range=(34, 36))
    pairs = cached_degraded_pairs(paths, 2, tmp_path / "cache", **settings)
    assert any((lr != downscale(hr, 2, "swscale-bicubic")).any() for lr, hr in pairs)
    again = cached_degraded_pairs(paths, 2, tmp_path / "cache", **settings)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(pairs, again))


def test_training_with_x264_in_the_loop_lowers_the_loss(tmp_path):
    data = draw_images(tmp_path / "data", 5, 4)
    out = tmp_path / "run"
    main(["--scale", "2", "--features", "16,16", "--kernels", "3,3,3", "--activation", "prelu", "--residual",
          "--patch", "12", "--batch", "16", "--lr", "5e-3", "--epochs", "5", "--steps-per-epoch", "60",
          "--degrade", "video", "--variants", "2", "--clip-frames", "4", "--crf-range", "20,30",
          "--holdout", "1", "--val", "--train", str(data), "--out", str(out),
          "--cache-dir", str(tmp_path / "cache"), "--export", str(tmp_path / "w.pt")])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    # on the same compressed patches, the trained network's loss is well below its starting
    # point (a residual network starts as the bicubic upscale)
    pairs = cached_degraded_pairs([p for p in sorted(data.iterdir()) if p.name != "0.png"], 2, tmp_path / "cache",
                                  variants=2, frames=4, kernels=KERNELS, crf_range=(20, 30), lossless=0.15,
                                  jpeg=0.1, seed=0)
    torch.manual_seed(1)
    batch = PatchSampler(pairs, 2, 12, 256, 1).batch()
    trained = network_from_checkpoint(load_checkpoint(tmp_path / "w.pt"), "w.pt").eval()
    start = copy.deepcopy(trained)
    torch.nn.init.zeros_(start.last_layer.weight)
    torch.nn.init.zeros_(start.last_layer.bias)
    with torch.no_grad():
        losses = [SRTask(2).loss(net, batch).item() for net in (start, trained)]
    assert losses[1] < 0.9 * losses[0], losses
    assert {"holdout-clean/psnr", "holdout-noaa/psnr", "holdout-crf23/psnr", "holdout-crf30/psnr"} <= set(log[0])
    result = json.loads((out / "result.json").read_text())
    assert result["holdout"] == ["0.png"] and result["degrade"] == "video"
    assert result["holdout_scores"] == {key: value for key, value in log[-1].items() if key.startswith("holdout-")}
    assert result["holdout_scores"]["holdout-crf23/psnr"] > 0
    assert any(p.name.startswith("srclips2-x2-") for p in (tmp_path / "cache").iterdir())


def test_eval_offers_the_non_antialiased_shrink(tmp_path, cli_run):
    folder = draw_images(tmp_path / "img", 2, 5)
    from srpipe.default_plugins.espcn.commands import DOWNSCALE_KERNELS

    assert DOWNSCALE_KERNELS == KERNELS  # the CLI keeps its own copy so that --help imports nothing heavy
    assert "opencv-cubic" in cli_run("eval", "--help").output
    scores = {}
    for kernel in ("matlab-bicubic", "opencv-cubic"):
        done = cli_run("eval", "-m", "bicubic", "--data", folder, "--downscale", kernel, "--json")
        scores[kernel] = json.loads(done.output)["mean"]["bicubic_psnr"]
    direct = []
    for path in sorted(folder.iterdir()):
        hr = modcrop(load_y(path), 2)
        lr = np.clip(np.rint(cv2.resize(hr.astype(np.float32), (32, 32), interpolation=cv2.INTER_CUBIC)), 0, 255)
        direct.append(psnr(bicubic_upscale(lr.astype(np.uint8), 2), hr, 2))
    assert scores["opencv-cubic"] == pytest.approx(np.mean(direct), abs=1e-9)
    assert scores["opencv-cubic"] != pytest.approx(scores["matlab-bicubic"], abs=0.01)


def test_eval_degrade_compresses_the_input(tmp_path, cli_run):
    folder = draw_images(tmp_path / "img", 2, 6)
    clean = json.loads(cli_run("eval", "-m", "bicubic", "--data", folder, "--json").output)["mean"]
    done = cli_run("eval", "-m", "bicubic", "--data", folder, "--degrade", "jpeg:quality=10", "--json")
    assert json.loads(done.output)["mean"]["bicubic_psnr"] < clean["bicubic_psnr"] - 0.5
    hr = modcrop(load_y(sorted(folder.iterdir())[0]), 2)
    x264 = make_degraded_lr(hr, 2, "swscale-bicubic", "x264:crf=40")
    assert x264.shape == (32, 32) and (x264 != swscale_resize(np.rint(hr).astype(np.uint8), 32, 32)).any()
    bad = cli_run("eval", "-m", "bicubic", "--data", folder, "--degrade", "x264:qp=3")
    assert bad.exit_code == 2 and bad.stderr.startswith("Usage: ") and "x264 takes crf" in bad.stderr  # usage


def test_train_command_takes_the_video_degradation(tmp_path, cli_run, monkeypatch):
    import srpipe.default_plugins.espcn.training

    monkeypatch.setattr(srpipe.default_plugins.espcn.training, "CACHE", tmp_path / "cache")
    data = draw_images(tmp_path / "data", 3, 7)
    weights = tmp_path / "mine.pt"
    done = cli_run("train", "espcn", "--data", data, "-s", "2", "--epochs", "1", "--steps-per-epoch", "2",
                   "--batch-size", "4", "--degrade", "video", "--holdout", "1", "-o", weights)
    assert done.exit_code == 0, done.output
    meta = load_checkpoint(weights)["meta"]
    assert meta["degrade"] == "video" and meta["holdout"] == ["0.png"]
    assert any(p.name.startswith("srclips2-x2-") for p in (tmp_path / "cache").iterdir())
    clean = tmp_path / "clean.pt"  # clean pairs hold images out as well: the one picture is not trained on
    done = cli_run("train", "espcn", "--data", data, "-s", "2", "--epochs", "1", "--steps-per-epoch", "2",
                   "--batch-size", "4", "--holdout", "1", "-o", clean)
    assert done.exit_code == 0, done.output
    meta = load_checkpoint(clean)["meta"]
    assert meta["holdout"] == ["0.png"] and "degrade" not in meta
    pairs = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("srpairs-x2-")]
    assert len(pairs) == 1 and len(np.load(pairs[0]).files) == 2 * 2  # two of the three pictures, LR and HR


def test_eval_refuses_an_image_too_small_to_score_in_one_line(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    cv2.imwrite(str(folder / "tiny.png"), np.full((10, 12, 3), 128, np.uint8))
    done = run_srpipe("eval", "-m", "bicubic", "--data", folder)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"Error: {folder / 'tiny.png'} is 12x10, too small to score at x2: it needs 16x16 pixels; leave it out of "
        "the folder"]
