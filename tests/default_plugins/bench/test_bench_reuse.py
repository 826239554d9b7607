"""The camera-like clips that `srpipe bench --speed-features` times, and that section itself
(figures are not asserted: timing tests flake)."""

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from srpipe.default_plugins.espcn.video_eval import luma_frames
from srpipe.testing import FixedCameraScene, make_fixed_camera_clip, make_test_video, make_zoom_clip

from conftest import run_srpipe


def block_changes(a: np.ndarray, b: np.ndarray, reduce=np.max) -> np.ndarray:
    """Per 16x16 block, ``reduce`` of the absolute difference of two luma planes."""
    d = np.abs(a.astype(np.int16) - b)
    h, w = d.shape[0] // 16 * 16, d.shape[1] // 16 * 16
    return reduce(d[:h, :w].reshape(h // 16, 16, w // 16, 16), axis=(1, 3))


def stream_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, stream.width, stream.height, Fraction(stream.average_rate), frames


@pytest.mark.parametrize("size", [(640, 360), (640, 480)])
def test_the_person_covers_a_fifth_of_the_frame_and_walks(size):
    scene = FixedCameraScene(*size)
    assert 0.15 <= (scene.alpha > 0.5).sum() / (size[0] * size[1]) <= 0.25
    lefts = [scene.subject_box(i)[0] for i in range(90)]
    assert max(lefts) - min(lefts) > 0.1 * size[0]  # across the room in 3 s, smoothly
    assert all(abs(a - b) < 0.015 * size[0] for a, b in zip(lefts, lefts[1:]))


def test_the_fixed_camera_sees_a_detailed_room_with_fresh_noise_on_every_frame():
    scene = FixedCameraScene(320, 180, noise=1.75)
    first, again, second = scene.frame(0).astype(np.float32), scene.frame(0), scene.frame(1).astype(np.float32)
    assert (again == first).all()  # a frame is the same every time it is asked for
    left = scene.subject_box(0)[0]
    noise = (second - first)[:, :left - 8]  # the room, left of the person
    assert 1.5 * np.sqrt(2) < noise.std() < 2 * np.sqrt(2)  # two frames' Gaussian noise, sigma 1.75
    luma = first.mean(axis=-1)
    textured = block_changes(luma, np.full_like(luma, luma.mean()), reduce=np.std)
    assert (textured > 4).mean() > 0.6  # most of the picture is not flat


def test_the_fixed_camera_clip_changes_only_where_the_person_is(tmp_path):
    clip = make_fixed_camera_clip(tmp_path / "fixed.mp4", width=192, height=112, frames=10, rate=30)
    assert stream_facts(clip) == ("h264", 192, 112, 30, 10)
    scene = FixedCameraScene(192, 112)
    luma = list(luma_frames(clip))
    still, moving = [], []
    for index in range(1, len(luma)):
        changes = block_changes(luma[index], luma[index - 1])
        outside = np.ones(changes.shape, bool)
        for seen in (index - 1, index):
            left, top, right, bottom = scene.subject_box(seen)
            outside[max(top - 16, 0) // 16:(bottom + 31) // 16, max(left - 16, 0) // 16:(right + 31) // 16] = False
        still.append(changes[outside])
        moving.append(changes[~outside])
    assert (np.concatenate(still) <= 3).mean() > 0.95  # the room: noise and the codec only
    assert (np.concatenate(moving) > 8).mean() > 0.3  # the person moves


def test_the_zoom_clip_changes_nearly_every_block(tmp_path):
    clip = make_zoom_clip(tmp_path / "zoom.mp4", width=192, height=112, frames=8, rate=25, crf=18, preset="veryfast")
    assert stream_facts(clip) == ("h264", 192, 112, 25, 8)
    luma = list(luma_frames(clip))
    for a, b in zip(luma, luma[1:]):
        assert (block_changes(b, a) > 3).mean() > 0.9


def test_speed_features_time_each_feature_on_and_off_on_both_clips(tmp_path, cli_run):
    from srpipe.default_plugins.bench.bench import system_ffmpeg
    from srpipe.default_plugins.bench.commands import speed_line
    from srpipe.plugins import collect_backends, get_plugin_manager

    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("bench", clip, "-m", "espcn", "--speed-features", "--speed-size", "64x36", "--speed-frames", "4",
                   "--batch-size", "2", "--repeats", "1", "--no-startup", "--json")  # its timed runs: processes
    assert done.exit_code == 0, done.stderr
    rows = json.loads(done.stdout)["speed_features"]
    by_clip = {}
    for row in rows:
        by_clip.setdefault(row["clip"], {})[row["run"]] = row
    assert set(by_clip) == {"fixed-camera 64x36", "zoom 64x36", "fixed-camera 64x48"}  # live: 4:3 at the width
    ffmpeg = system_ffmpeg() is not None
    backends = collect_backends(get_plugin_manager())
    int8 = [b.name for b in backends if not b.exact and b.is_available() and "cpu" in b.devices]
    exact_backend = backends.select("auto", "cpu", exact=True).name
    for label in ("fixed-camera 64x36", "zoom 64x36"):
        runs = by_clip[label]
        whole = {"upscale -m espcn", "upscale -m espcn --exact"}
        if int8:  # int8 on and off, tile reuse on
            whole |= {f"upscale -m espcn --backend {name}" for name in [*int8, exact_backend]}
        stages = {f"upscale stage, {run}" for run in
                  ("network on every tile", "reuse + flat tiles", "reuse only", "flat tiles only")}
        assert set(runs) == whole | stages | ({"ffmpeg bicubic + x264 veryfast"} if ffmpeg else set())
        assert all(row["fps_median"] > 0 for row in runs.values())
        default, exact = runs["upscale -m espcn"], runs["upscale -m espcn --exact"]
        assert exact["reuse"] is None and exact["vs_exact"] == 1.0 and exact["backend"] == exact_backend
        assert set(default["reuse"]) == {"frames", "tiles", "reused", "flat", "computed", "full_frames",
                                         "shifted_frames"}
        assert default["reuse"]["frames"] == 4 and ("vs_ffmpeg" in default) == ffmpeg
        assert runs["upscale stage, network on every tile"]["reuse"] is None
        assert runs["upscale stage, reuse only"]["reuse"]["frames"] == 4
    live = by_clip["fixed-camera 64x48"]
    assert set(live) == {"live -m espcn", "live -m espcn --drop-frames", "live -m espcn --exact"}
    for row in live.values():
        assert 0 < row["shown_median"] <= 1 and 0 <= row["p50_ms_median"] <= row["p99_ms_median"]
    assert live["live -m espcn"]["reused"] is not None and live["live -m espcn --exact"]["reused"] is None
    assert 0 <= live["live -m espcn"]["late"] <= 1 and live["live -m espcn --drop-frames"]["late"] == 0
    assert live["live -m espcn --exact"]["late"] is None
    lines = [speed_line(row) for row in rows]
    assert any("x exact" in line and "reused" in line for line in lines)
    assert sum(line.startswith("fixed-camera 64x48") and "shown" in line and "p99" in line for line in lines) == 3


def test_speed_features_need_a_model_that_reuses_tiles_and_an_even_size(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("bench", clip, "-m", "bicubic", "--speed-features", "--repeats", "1")
    assert done.returncode == 1 and b"none of bicubic does; add one with -m" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_srpipe("bench", clip, "-m", "espcn", "--speed-features", "--speed-size", "65x48")
    assert done.returncode == 2 and b"not WIDTHxHEIGHT with even numbers" in done.stderr


def test_each_models_rows_are_set_against_its_own_exact_run_and_ffmpeg():
    from srpipe.default_plugins.bench.bench import _speed_ratios

    def row(model, run, fps, kind="whole"):
        return {"clip": "fixed-camera 640x360", "kind": kind, "model": model, "run": run, "fps_median": fps}

    rows = [row(None, "ffmpeg bicubic + x264 veryfast", 50.0)]
    for model, exact_fps in (("espcn", 5.0), ("espcn-clean", 10.0)):
        rows += [row(model, f"upscale -m {model}", 20.0), row(model, f"upscale -m {model} --exact", exact_fps),
                 row(model, "upscale stage, network on every tile", exact_fps, "stage"),
                 row(model, "upscale stage, reuse + flat tiles", 40.0, "stage")]
    _speed_ratios(rows)
    ratios = [(r["model"], r["run"], r.get("vs_exact"), r.get("vs_ffmpeg")) for r in rows]
    assert ratios == [(None, "ffmpeg bicubic + x264 veryfast", None, None),
                      ("espcn", "upscale -m espcn", 4.0, 0.4), ("espcn", "upscale -m espcn --exact", 1.0, 0.1),
                      ("espcn", "upscale stage, network on every tile", 1.0, None),
                      ("espcn", "upscale stage, reuse + flat tiles", 8.0, None),
                      ("espcn-clean", "upscale -m espcn-clean", 2.0, 0.4),
                      ("espcn-clean", "upscale -m espcn-clean --exact", 1.0, 0.2),
                      ("espcn-clean", "upscale stage, network on every tile", 1.0, None),
                      ("espcn-clean", "upscale stage, reuse + flat tiles", 4.0, None)]
