"""scripts/make_camera_stills.py on small generated clips laid out as the packages unpack them:
the training stills and held-out clips it makes, and the sources it refuses."""

import hashlib
import importlib.util
import sys

import av
import cv2
import numpy as np
import pytest

from srpipe.testing import make_test_video

from conftest import REPO

spec = importlib.util.spec_from_file_location("make_camera_stills", REPO / "scripts" / "make_camera_stills.py")
stills = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stills)


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """Two training clips and a held-out one at their paths under ``files/``, with their digests."""
    folder = tmp_path / "sources"
    table = {}
    for path, frames, taken in (("usr/share/a/one.mp4", 12, 3), ("usr/share/b/two.mp4", 8, 20),
                                ("usr/share/c/held.mp4", 64, 0)):
        (folder / "files" / path).parent.mkdir(parents=True, exist_ok=True)
        make_test_video(folder / "files" / path, width=96, height=64, frames=frames, audio=False)
        table[path] = (hashlib.sha256((folder / "files" / path).read_bytes()).hexdigest(), taken)
    monkeypatch.setattr(stills, "SOURCES", table)
    return folder


def run(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["make_camera_stills.py", *map(str, args)])
    stills.main()


def decoded(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_training_stills_are_halved_frames_spread_over_each_clip(sources, tmp_path, monkeypatch):
    run(monkeypatch, "--sources", sources, "--out", tmp_path / "out")
    made = sorted(p.name for p in (tmp_path / "out" / "train").iterdir())
    assert made == ["one-0003.png", "one-0006.png", "one-0008.png",  # 3 of 12, none at the ends
                    *(f"two-{i:04d}.png" for i in range(8))]  # 20 asked of 8: each frame once
    frames = decoded(sources / "files" / "usr/share/a/one.mp4")
    still = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "train" / "one-0006.png")), cv2.COLOR_BGR2RGB)
    assert still.shape == (32, 48, 3)
    np.testing.assert_array_equal(still, cv2.resize(frames[6], (48, 32), interpolation=cv2.INTER_AREA))


def test_held_out_clips_are_30_halved_frames_stored_losslessly(sources, tmp_path, monkeypatch):
    run(monkeypatch, "--sources", sources, "--out", tmp_path / "out")
    held = decoded(tmp_path / "out" / "val" / "camera" / "held.mp4")
    frames = decoded(sources / "files" / "usr/share/c/held.mp4")
    assert len(held) == 30 and held[0].shape == (32, 48, 3)
    # lossless luma (the scored plane): RGB goes through 4:2:0, so compare the Y the encoder was given
    with av.open(str(tmp_path / "out" / "val" / "camera" / "held.mp4")) as container:
        luma = [f.to_ndarray()[:32] for f in container.decode(video=0)]  # yuv420p: Y, then U and V
    source = cv2.resize(frames[30], (48, 32), interpolation=cv2.INTER_AREA)
    given = av.VideoFrame.from_ndarray(source, format="rgb24").reformat(format="yuv420p").to_ndarray()[:32]
    np.testing.assert_array_equal(luma[0], given)
    assert not (tmp_path / "out" / "train" / "held-0030.png").exists()


def test_a_missing_or_changed_source_is_refused_in_a_line(sources, tmp_path, monkeypatch):
    (sources / "files" / "usr/share/b/two.mp4").write_bytes(b"not the clip")
    with pytest.raises(SystemExit, match="two.mp4 is not the file this set was made from"):
        run(monkeypatch, "--sources", sources, "--out", tmp_path / "out")
    (sources / "files" / "usr/share/b/two.mp4").unlink()
    with pytest.raises(SystemExit, match="two.mp4 is not in .*; run with --download"):
        run(monkeypatch, "--sources", sources, "--out", tmp_path / "out")


def test_a_held_out_clip_too_short_is_refused_in_a_line(sources, tmp_path, monkeypatch):
    short = sources / "files" / "usr/share/c/held.mp4"
    make_test_video(short, width=96, height=64, frames=40, audio=False)
    monkeypatch.setitem(stills.SOURCES, "usr/share/c/held.mp4", (hashlib.sha256(short.read_bytes()).hexdigest(), 0))
    with pytest.raises(SystemExit, match="held.mp4 has 40 frames; a held-out clip takes frames 30-59"):
        run(monkeypatch, "--sources", sources, "--out", tmp_path / "out")
