"""``srpipe live --record`` never replaces its own source (issue #27)."""

import os
import subprocess
import sys

import pytest

from srpipe.testing import make_test_video


def live(tmp_path, source, record, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "srpipe", "live", "--source", str(source), "--record", str(record),
                           "-y", "--no-window"], stdin=stdin, capture_output=True, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("source, record", [
    ("clip.mp4", "clip.mp4"),
    ("file:clip.mp4", "clip.mp4"),
    ("file:ABSOLUTE", "clip.mp4"),
    ("clip.mp4", "hard-link.mp4"),
    ("file:clip.mp4", "link.mp4"),
    ("-", "clip.mp4"),
])
def test_a_recording_that_would_replace_its_source_is_refused_and_nothing_is_touched(tmp_path, source, record):
    clip = make_test_video(tmp_path / "clip.mp4", frames=5)
    os.link(clip, tmp_path / "hard-link.mp4")
    os.symlink(clip.name, tmp_path / "link.mp4")
    before, names = clip.read_bytes(), sorted(os.listdir(tmp_path))
    with open(clip, "rb") as stdin:
        done = live(tmp_path, source.replace("ABSOLUTE", str(clip)), record, stdin)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and lines == [
        f"Error: output {record} is the input file, or a link to it; choose another name with --record"
    ], done.stderr.decode()
    assert clip.read_bytes() == before and sorted(os.listdir(tmp_path)) == names


def test_a_recording_beside_its_source_is_still_written(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "shown.mp4").write_bytes(b"an earlier recording")
    done = live(tmp_path, "file:clip.mp4", "shown.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "shown.mp4").read_bytes()[4:8] == b"ftyp"
