"""``srpipe live --record`` never replaces its own source (issue #27)."""

import os
import re
import subprocess
import sys
import threading

import av
import pytest

from srpipe.testing import make_test_video


def live(tmp_path, source, record, stdin=subprocess.DEVNULL):
    """``srpipe live`` of ``source`` (``--camera DEVICE`` for ``camera:DEVICE``) into ``record``, headless."""
    where = ["--camera", source.removeprefix("camera:")] if source.startswith("camera:") else ["--source", source]
    return subprocess.run([sys.executable, "-m", "srpipe", "live", *where, "--record", str(record), "-y",
                           "--no-window"], stdin=stdin, capture_output=True, cwd=tmp_path, timeout=300)


def one_error_line(done):
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    return lines[0]


@pytest.mark.parametrize("source, record", [
    ("clip.mp4", "clip.mp4"),
    ("file:clip.mp4", "clip.mp4"),
    ("file:ABSOLUTE", "clip.mp4"),
    ("clip.mp4", "hard-link.mp4"),
    ("file:clip.mp4", "link.mp4"),
    ("-", "clip.mp4"),
    ("concat:clip.mp4", "clip.mp4"),
    ("concat:other.mp4|clip.mp4", "clip.mp4"),
    ("async:file:clip.mp4", "clip.mp4"),
    ("camera:ABSOLUTE", "clip.mp4"),  # OpenCV opens a file as a camera
    ("camera:clip.mp4", "link.mp4"),
])
def test_a_recording_that_would_replace_its_source_is_refused_and_nothing_is_touched(tmp_path, source, record):
    clip = make_test_video(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "other.mp4").write_bytes(clip.read_bytes())
    os.link(clip, tmp_path / "hard-link.mp4")
    os.symlink(clip.name, tmp_path / "link.mp4")
    before, names = clip.read_bytes(), sorted(os.listdir(tmp_path))
    with open(clip, "rb") as stdin:
        done = live(tmp_path, source.replace("ABSOLUTE", str(clip)), record, stdin)
    assert one_error_line(done) == \
        f"Error: output {record} is the input file, or a link to it; choose another name with --record"
    assert clip.read_bytes() == before and sorted(os.listdir(tmp_path)) == names


def test_a_recording_beside_its_source_is_still_written(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "shown.mp4").write_bytes(b"an earlier recording")
    done = live(tmp_path, "file:clip.mp4", "shown.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "shown.mp4").read_bytes()[4:8] == b"ftyp"


def test_a_recording_into_avi_counts_the_sources_frames(tmp_path):
    """AVI counts time in frames: a 60 fps source's frames, timed in milliseconds, met at 30 ticks a
    second and the writer refused them ('Invalid argument')."""
    make_test_video(tmp_path / "clip.mp4", frames=30, rate=60, audio=False)
    done = live(tmp_path, "clip.mp4", "shown.avi")
    assert done.returncode == 0, done.stderr.decode()
    # every frame shown is recorded (on a busy machine live drops some: it keeps up with the source)
    shown = int(re.search(r"(\d+) frames shown", done.stderr.decode()).group(1))
    with av.open(str(tmp_path / "shown.avi")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 60 and sum(1 for _ in container.decode(stream)) == shown >= 10


def test_a_source_whose_files_cannot_be_told_never_replaces_a_recording(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "list.txt").write_text("clip.mp4\n")
    (tmp_path / "shown.mp4").write_bytes(b"an earlier recording")
    done = live(tmp_path, "concatf:list.txt", "shown.mp4")
    assert one_error_line(done) == ("Error: cannot tell whether concatf:list.txt reads shown.mp4; "
                                    "give the input as a plain path, or remove shown.mp4 first")
    assert (tmp_path / "shown.mp4").read_bytes() == b"an earlier recording"


def test_a_network_recording_is_one_line(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=5)
    done = live(tmp_path, "clip.mp4", "rtmp://127.0.0.1:1/live")
    assert one_error_line(done).startswith("Error: output rtmp://127.0.0.1:1/live is a network address; "
                                           "--record writes a file")
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


def test_a_recording_into_a_fifo_is_streamed_as_upscale_streams(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=10, audio=False)
    os.mkfifo(tmp_path / "seekless.mp4")
    assert one_error_line(live(tmp_path, "clip.mp4", tmp_path / "seekless.mp4")) == \
        f"Error: mp4 cannot be streamed to {tmp_path / 'seekless.mp4'} (a FIFO); use a .mkv or .ts name"
    os.mkfifo(tmp_path / "stream.mkv")
    received = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "stream.mkv").read_bytes()))
    reader.start()
    done = live(tmp_path, "clip.mp4", tmp_path / "stream.mkv")
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "received.mkv").write_bytes(received[0])
    with av.open(str(tmp_path / "received.mkv")) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
