"""scripts/live_fidelity.py: what live preview shows with --keep-up and --drop-frames, scored
against the network on every frame, on a small generated camera clip."""

import re
import subprocess
import sys

from srpipe.testing import make_fixed_camera_clip

from conftest import REPO

SCORE = r"(\d+\.\d+) dB \(worst frame (\d+\.\d+)\)"


def test_both_ways_are_scored_against_the_network(tmp_path):
    clip = make_fixed_camera_clip(tmp_path / "camera.mp4", width=192, height=144, frames=12)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "live_fidelity.py"), str(clip), "--frames", "10"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "10 frames of 192x144, x2, 30.0 fps" in out
    keep_up = re.search(r"--keep-up: +" + SCORE + r"; tiles shown as bicubic (\d+\.\d)%", out)
    drop = re.search(r"--drop-frames: +" + SCORE + r"; (\d+) of 10 frames shown", out)
    assert keep_up and drop, out
    assert float(keep_up[2]) <= float(keep_up[1]) <= 100 and 0 <= float(keep_up[3]) <= 100
    assert 1 <= int(drop[3]) <= 10


def test_a_model_without_tile_reuse_is_refused(tmp_path):
    clip = make_fixed_camera_clip(tmp_path / "camera.mp4", width=64, height=48, frames=3)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "live_fidelity.py"), str(clip), "-m", "bicubic"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "bicubic does not reuse tiles" in done.stderr
