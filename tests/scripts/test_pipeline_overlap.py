"""scripts/pipeline_overlap.py: the pipeline's frame rate around a stand-in model that waits."""

import re
import subprocess
import sys

from srpipe.testing import make_test_video

from conftest import REPO


def test_each_wait_gets_its_rate_and_the_wait_bounds_it(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", width=64, height=48, frames=12)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline_overlap.py"), str(clip),
                           "--wait-ms", "0,20", "--repeats", "1", "--batch-size", "4"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rates = dict(re.findall(r"^wait (\d+) ms a frame: (\d+\.\d) fps", done.stdout, re.MULTILINE))
    assert set(rates) == {"0", "20"}, done.stdout
    assert 0 < float(rates["20"]) <= 50  # 20 ms a frame in the model's thread: 50 frames a second at most
