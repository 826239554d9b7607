"""``srpipe live --record`` never replaces its own source (issue #27)."""

import os
import re
import subprocess
import sys
import types

import av
import numpy as np
import pytest

from srpipe.testing import make_test_video

from conftest import FifoReader, open_fifo


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
    reader = FifoReader(tmp_path / "stream.mkv")
    done = live(tmp_path, "clip.mp4", tmp_path / "stream.mkv")
    received = reader.result()
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "received.mkv").write_bytes(received)
    with av.open(str(tmp_path / "received.mkv")) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0


def test_a_recording_fifos_reader_that_leaves_ends_live_quietly(tmp_path):
    """As upscale ends: it was 'cannot write ...: Broken pipe; check free space and permissions', exit 1."""
    make_test_video(tmp_path / "clip.mp4", frames=60, width=160, height=96, audio=False)
    os.mkfifo(tmp_path / "stream.mkv")
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "live", "--source", "clip.mp4", "--no-window",
                                "--record", "stream.mkv", "-y"], cwd=tmp_path, stderr=subprocess.PIPE)
    with open_fifo(tmp_path / "stream.mkv", "rb", process) as reader:
        assert len(reader.read(2000)) == 2000
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "stream.mkv"]


class _FullDisk:
    """A container whose trailer cannot be written: the disk filled up."""

    def __init__(self, container):
        self.container = container

    def __getattr__(self, name):
        return getattr(self.container, name)

    def close(self):
        self.container.close()
        raise av.error.OSError(28, "No space left on device")


def test_a_recording_whose_trailer_cannot_be_written_is_one_error_and_leaves_nothing(tmp_path):
    from srpipe.default_plugins.live.recorder import Recorder
    from srpipe.errors import SrpipeError

    image = np.zeros((48, 64, 3), np.uint8)
    recorder = Recorder(tmp_path / "r.mkv")
    for shown_at in (0.0, 0.04):
        recorder.write(image, shown_at)
    recorder.container = _FullDisk(recorder.container)
    with pytest.raises(SrpipeError, match="^cannot write .*r.mkv: .*No space left on device.*; check free space"):
        recorder.finish()
    assert os.listdir(tmp_path) == []
    failed = Recorder(tmp_path / "f.mkv")  # a write failed (the run then aborts): the full disk is no new error
    failed.write(image, 0.0)
    failed.container = _FullDisk(failed.container)
    failed.abort()
    assert os.listdir(tmp_path) == []


def test_a_signal_while_the_recording_is_finished_acts_after_it_is_kept_and_summed_up(tmp_path):
    """VP9's last frames take seconds to encode: `timeout` or `docker stop` lost the recording there."""
    import signal

    from srpipe.default_plugins.live.session import _end

    class Stopped(BaseException):
        pass

    def stop(signum, frame):
        raise Stopped

    done = []

    class Finishing:
        def finish(self):
            os.kill(os.getpid(), signal.SIGTERM)  # as the encoder flushes
            done.append("recording kept")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Stopped):
            _end(types.SimpleNamespace(stats="stats"), Finishing(), lambda stats: done.append(f"summed up {stats}"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert done == ["recording kept", "summed up stats"]


def test_a_vp9_recording_encodes_each_frame_as_it_is_shown(tmp_path):
    """libvpx's default looks 25 frames ahead at its slow setting: a WebM recording fell behind
    the source, and took seconds to finish. As a live encoder, a frame in gives its packet out."""
    from srpipe.default_plugins.live.recorder import Recorder

    recorder = Recorder(tmp_path / "r.webm")
    muxed = []
    mux = recorder._mux
    recorder._mux = lambda packets: (muxed.append(len(packets)), mux(packets))
    for index in range(3):
        recorder.write(np.full((48, 64, 3), 40 * index, np.uint8), index / 30)
    recorder.finish()
    assert muxed[:3] == [1, 1, 1]
    with av.open(str(tmp_path / "r.webm")) as written:
        assert written.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
        assert sum(1 for packet in written.demux(video=0) if packet.size) == 3


@pytest.mark.parametrize("record, said", [
    ("rec.gif", "--record rec.gif: live records video; give a .mp4, .mkv, .mov, .webm or .ts name"),
    ("rec.png", "--record rec.png: live records video; give a .mp4, .mkv, .mov, .webm or .ts name"),
    ("-", "--record writes a file: give a name such as rec.mp4 or rec.mkv"),
])
def test_a_recording_live_cannot_make_is_refused_before_anything_runs(tmp_path, record, said):
    make_test_video(tmp_path / "clip.mp4", frames=3)
    done = live(tmp_path, "clip.mp4", record)
    assert done.returncode == 2 and done.stderr.startswith(b"Usage: "), done.stderr  # whatever the files
    assert done.stderr.decode().splitlines()[-1].startswith(f"Error: {said}")
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_a_recording_whose_encoder_takes_no_420_is_written_in_what_it_takes(tmp_path):
    from srpipe.default_plugins.live.recorder import Recorder

    recorder = Recorder(tmp_path / "r.mov", codec="prores_ks", crf=None, preset=None)
    for index in range(2):
        recorder.write(np.full((48, 64, 3), 60 * index, np.uint8), index / 30)
    recorder.finish()
    with av.open(str(tmp_path / "r.mov")) as written:
        assert written.streams.video[0].codec_context.pix_fmt == "yuv422p10le"
        assert sum(1 for packet in written.demux(video=0) if packet.size) == 2


def test_a_phones_turned_video_is_shown_and_recorded_upright(tmp_path):
    """Its display matrix turns it a quarter, as every player shows it: it lay on its side."""
    make_test_video(tmp_path / "phone.mp4", width=64, height=48, frames=3, rotation=90, audio=False)
    done = live(tmp_path, "phone.mp4", "shown.mkv")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / "shown.mkv")) as recording:
        video = recording.streams.video[0]
        assert (video.width, video.height) == (2 * 48 * 2, 64 * 2)  # both halves, each turned, x2
        assert sum(1 for packet in recording.demux(video=0) if packet.size) == 3


def test_a_recording_of_a_source_with_sound_says_it_holds_the_picture_only(tmp_path):
    make_test_video(tmp_path / "clip.mp4", frames=3)
    done = live(tmp_path, "clip.mp4", "shown.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert "Warning: shown.mkv records the picture only: the sound of clip.mp4 is not recorded" in done.stderr.decode()
    with av.open(str(tmp_path / "shown.mkv")) as recording:
        assert [stream.type for stream in recording.streams] == ["video"]
