"""srpipe bench reports every stage (figures are not asserted: timing tests flake)."""

import json
import shutil

import pytest

from srpipe.testing import make_test_video

from conftest import run_srpipe


def test_bench_reports_every_stage(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=6)
    done = run_srpipe("bench", clip, "-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    stages = [(r["stage"], r["model"]) for r in report["results"]]
    assert stages[:4] == [("decode", None), ("upscale", "bicubic"), ("encode", None), ("end-to-end", "bicubic")]
    assert all(r["fps_median"] > 0 for r in report["results"])
    assert report["results"][0]["frames"] == 6 and report["results"][3]["peak_rss_mib"] > 0
    assert report["size"] == "64x48" and report["scale"] == 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no system ffmpeg")
def test_bench_compares_each_classical_method_with_ffmpegs_own(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=4)
    done = run_srpipe("bench", clip, "-m", "bicubic", "-m", "lanczos", "--batch-size", "2", "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert [r["model"] for r in report["results"] if r["stage"] == "ffmpeg end-to-end"] == ["bicubic", "lanczos"]
    assert {"bicubic vs ffmpeg", "lanczos vs ffmpeg"} <= set(report["ratios"])
