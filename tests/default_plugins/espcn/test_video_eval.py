"""`srpipe eval --video`: shrink, x264 at each crf, upscale through the pipeline, score every frame."""

import json

import numpy as np
import pytest

from srpipe.default_plugins.espcn.degrade import swscale_resize
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.video_eval import luma_frames, shrink_and_encode
from srpipe.resize import PlaneScaler
from srpipe.testing import make_test_video


def test_eval_video_scores_bicubic_as_a_direct_computation(tmp_path, cli_run):
    clip = make_test_video(tmp_path / "clip.mp4", width=70, height=54, frames=6, audio=False)
    done = cli_run("eval", "-m", "espcn", "--video", clip, "--crfs", "0,30", "--json")
    report = json.loads(done.output)
    assert [row["crf"] for row in report["crfs"]] == [0, 30] and report["scale"] == 2
    original = list(luma_frames(clip))
    for row in report["crfs"]:
        assert row["frames"] == 6 and set(row["psnr"]) == {"bicubic", "espcn", "espcn --exact"}  # --score both
        lr_clip = tmp_path / f"lr{row['crf']}.mp4"
        assert shrink_and_encode(clip, lr_clip, 2, row["crf"]) == (68, 52)  # cropped to fit 4:2:0 at x2
        lr = list(luma_frames(lr_clip))
        if row["crf"] == 0:  # lossless: exactly ffmpeg's bicubic shrink of the (cropped) luma
            assert all((a == swscale_resize(o[:52, :68], 34, 26)).all() for a, o in zip(lr, original))
        scaler = PlaneScaler((34, 26), (68, 52), 8, "bicubic")
        direct = []
        for a, o in zip(lr, original):
            up = np.empty((52, 68), np.uint8)
            scaler.resize(a, up)
            direct.append(psnr(up, o[:52, :68], 2))
        assert row["psnr"]["bicubic"] == pytest.approx(np.mean(direct), abs=1e-9)
    assert report["crfs"][0]["psnr"]["bicubic"] > report["crfs"][1]["psnr"]["bicubic"]


def test_eval_video_refuses_bad_input(tmp_path, cli_run):
    folder = tmp_path / "images"
    folder.mkdir()
    done = cli_run("eval", "-m", "bicubic", "--video", tmp_path / "missing.mp4")
    assert done.exit_code == 1 and "does not exist" in done.output
    done = cli_run("eval", "-m", "bicubic", "--video", tmp_path / "missing.mp4", "--data", folder)
    assert done.exit_code == 1 and "either --data" in done.output
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", "--video", clip, "--crfs", "0,x")
    assert done.exit_code == 1 and "--crfs takes" in done.output
