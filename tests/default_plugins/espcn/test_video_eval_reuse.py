"""`srpipe eval --video` scores `srpipe upscale`'s default path (tile reuse, flat tiles, int8
where they apply) and its --exact path, each as a direct computation gives it."""

import json

import numpy as np
import pytest

from srpipe.backends import load_upscaler
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.video_eval import luma_frames, shrink_and_encode
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.reuse import with_reuse
from srpipe.testing import make_fixed_camera_clip


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    # large enough that the person leaves tiles to reuse (at the ReusePolicy of this writing)
    return make_fixed_camera_clip(tmp_path_factory.mktemp("camera") / "camera.mp4", width=512, height=288, frames=6)


def direct_score(clip, lr_clip, exact: bool, model: str = "espcn") -> float:
    """Mean Y-PSNR of ``model`` run frame after frame on the LR luma, as `srpipe upscale` runs it on
    the CPU: with tile reuse unless ``exact``."""
    pm = get_plugin_manager()
    upscaler = load_upscaler(collect_models(pm).get(model), collect_backends(pm), scale=2, device="cpu",
                             weights=None, exact=exact)
    if not exact:
        upscaler = with_reuse(upscaler)
    scores = [psnr(upscaler.upscale(lr[None], bit_depth=8, full_range=False)[0], original, 2)
              for lr, original in zip(luma_frames(lr_clip), luma_frames(clip))]
    return float(np.mean(scores))


def test_eval_video_scores_the_default_path_and_exact(camera_clip, tmp_path, cli_run, monkeypatch):
    import srpipe.upscaling

    asked = []
    upscale = srpipe.upscaling.upscale

    def spy(*args, **kwargs):
        asked.append((kwargs["model"], kwargs["exact"]))
        return upscale(*args, **kwargs)

    monkeypatch.setattr(srpipe.upscaling, "upscale", spy)
    done = cli_run("eval", "-m", "espcn", "--video", camera_clip, "--crfs", "23", "--device", "cpu", "--json")
    row = json.loads(done.output)["crfs"][0]
    assert set(row["psnr"]) == {"bicubic", "espcn", "espcn --exact"} and row["frames"] == 6
    assert sorted(asked) == [("bicubic", False), ("espcn", False), ("espcn", True)]
    lr_clip = tmp_path / "lr.mp4"
    shrink_and_encode(camera_clip, lr_clip, 2, 23)
    # the model that ran: at crf 23 the camera is coded coarsely enough for espcn-midbitrate to stand in
    ran = {label: row["ran"][label].split()[0] for label in ("espcn", "espcn --exact")}
    assert ran["espcn"] == ran["espcn --exact"] == "espcn-midbitrate"
    assert row["psnr"]["espcn --exact"] == pytest.approx(
        direct_score(camera_clip, lr_clip, exact=True, model=ran["espcn --exact"]), abs=1e-9)
    assert row["psnr"]["espcn"] == pytest.approx(
        direct_score(camera_clip, lr_clip, exact=False, model=ran["espcn"]), abs=1e-9)

    monkeypatch.undo()
    table = cli_run("eval", "-m", "espcn", "--video", camera_clip, "--crfs", "23", "--frames", "2").output
    header, line, stand_in = table.splitlines()
    assert stand_in == "at crf 23, espcn ran as espcn-midbitrate"
    assert "espcn Y-PSNR" in header and "espcn --exact Y-PSNR" in header and "vs exact" in header
    assert len(line.split()) == 7  # crf, frames, default, exact, vs exact, bicubic, gain


@pytest.mark.parametrize("score, keys", [("default", {"bicubic", "espcn"}), ("exact", {"bicubic", "espcn --exact"})])
def test_eval_video_scores_one_path_when_asked(camera_clip, cli_run, score, keys):
    done = cli_run("eval", "-m", "espcn", "--video", camera_clip, "--crfs", "30", "--frames", "2", "--score", score,
                   "--json")
    assert set(json.loads(done.output)["crfs"][0]["psnr"]) == keys


def test_eval_refuses_a_score_it_cannot_give(camera_clip, tmp_path, cli_run):
    folder = tmp_path / "images"
    folder.mkdir()
    done = cli_run("eval", "-m", "espcn", "--data", folder, "--score", "both")
    assert done.exit_code == 2 and done.stderr.startswith("Usage: ") and done.stderr.endswith(
        "Error: --score both goes with --video; with --data give --score default or --score exact\n")
    inexact = [b.name for b in collect_backends(get_plugin_manager()) if not b.exact and b.is_available()]
    if inexact:
        done = cli_run("eval", "-m", "espcn", "--video", camera_clip, "--backend", inexact[0])
        assert done.exit_code == 1 and "is not exact, so it cannot run the --exact path" in done.stderr
        assert done.stderr.count("\n") == 1
