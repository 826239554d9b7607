"""``srpipe live`` from the command line, headless."""

import os
import re
import signal
import subprocess
import sys
import time

import av
import pytest

from srpipe.testing import damage_video, make_test_video

from conftest import default_sigint, run_srpipe, served, wait_until_blocked

SUMMARY = re.compile(r"(\d+) frames shown, (\d+) dropped of (\d+) read in [\d.]+ s \([\d.]+ fps\); latency ms: p50 \d+")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("cli") / "clip.mp4", frames=25, rate=25)


def test_no_window_prints_statistics_and_records_what_was_shown(clip, tmp_path):
    record = tmp_path / "shown.mp4"
    done = run_srpipe("live", "--source", clip, "--no-window", "-m", "bicubic", "--record", record)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    shown, dropped, read = map(int, SUMMARY.search(stderr).groups())
    assert read == 25 and shown + dropped == read
    with av.open(str(record)) as recording:
        stream = recording.streams.video[0]
        assert (stream.width, stream.height) == (256, 96)  # bicubic and model side by side, x2
        assert sum(1 for _ in recording.decode(stream)) == shown
    # x264's settings, as it writes them into the stream: ultrafast's, so that recording keeps up
    assert b"cabac=0 ref=1 deblock=0:0:0 analyse=0:0 me=dia subme=0" in record.read_bytes()
    assert not list(tmp_path.glob(".*partial*"))


def test_the_recording_takes_the_encoder_options_of_upscale(clip, tmp_path):
    record = tmp_path / "shown.mkv"
    record.write_bytes(b"old")
    done = run_srpipe("live", "--source", clip, "--no-window", "--record", record, "--codec", "ffv1", "-y")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(record)) as recording:
        assert recording.streams.video[0].codec_context.name == "ffv1"
    refused = run_srpipe("live", "--source", clip, "--no-window", "--record", tmp_path / "r.mp4", "--preset", "warp")
    assert refused.returncode == 1 and b"--preset warp is not a libx264 preset" in refused.stderr
    assert not list(tmp_path.glob("r.mp4")) and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("sent, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])  # SIGTERM: docker stop
def test_ctrl_c_or_sigterm_prints_statistics_and_keeps_the_recording(tmp_path, sent, status):
    long_clip = make_test_video(tmp_path / "long.mp4", frames=250, rate=25, audio=False)  # 10 s
    process = subprocess.Popen(
        [sys.executable, "-m", "srpipe", "live", "--source", str(long_clip), "--no-window",
         "--record", str(tmp_path / "r.mp4")],
        stderr=subprocess.PIPE, preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".r.*partial*")):  # the loop has started recording
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(1)  # about a second of playing
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=30)
    stderr = stderr.decode()
    assert process.returncode == status, stderr
    shown, dropped, read = map(int, SUMMARY.search(stderr).groups())
    assert 0 < read < 250 and shown + dropped == read
    with av.open(str(tmp_path / "r.mp4")) as recording:  # stopping a recording with Ctrl-C keeps it, whole
        assert sum(1 for _ in recording.decode(video=0)) == shown


def test_a_source_that_breaks_off_keeps_the_recording_of_what_was_shown(clip, tmp_path):
    mjpeg = make_test_video(tmp_path / "clip.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=25, codec_options={})
    damaged = damage_video(mjpeg, tmp_path / "damaged.mkv", frames=(15, 16))  # as a stream breaking off there
    record = tmp_path / "r.mkv"
    done = run_srpipe("live", "--source", damaged, "--no-window", "--record", record)
    stderr = done.stderr.decode()
    assert done.returncode == 1 and stderr.splitlines()[-1].startswith(f"Error: {damaged} is damaged"), stderr
    shown, _, _ = map(int, SUMMARY.search(stderr).groups())
    with av.open(str(record)) as recording:
        assert 0 < sum(1 for _ in recording.decode(video=0)) == shown


def test_damaged_frames_skipped_on_request_are_told(tmp_path):
    mjpeg = make_test_video(tmp_path / "clip.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=25, codec_options={})
    damaged = damage_video(mjpeg, tmp_path / "damaged.mkv", frames=(15, 16))
    done = run_srpipe("live", "--source", damaged, "--no-window", "-m", "bicubic", "--on-decode-error", "skip")
    stderr = done.stderr.decode()
    assert done.returncode == 0 and f"Warning: 2 damaged frames of {damaged} were skipped" in stderr, stderr
    assert int(SUMMARY.search(stderr).group(3)) == 23  # read: the frames that decoded


def test_user_errors_are_one_line(clip):
    missing = run_srpipe("live", "--camera", "/dev/video-srpipe-missing", "--no-window")
    assert missing.returncode == 1
    assert missing.stderr.decode().strip().splitlines() == [
        "Error: cannot open camera /dev/video-srpipe-missing (No such file or directory); check that it is "
        "connected and not in use by another program, and list the cameras with 'srpipe live --list-cameras'"
    ]
    no_display = run_srpipe("live", "--source", clip, env={"DISPLAY": ""})
    assert no_display.returncode == 1 and "use --no-window" in no_display.stderr.decode()
    both = run_srpipe("live", "--source", clip, "--camera", "0")
    assert both.returncode == 2 and "give either --camera or --source" in both.stderr.decode()


def test_list_cameras_lists_video_devices():
    done = run_srpipe("live", "--list-cameras")
    assert done.returncode == 0
    devices = sorted(name for name in os.listdir("/dev") if name.startswith("video"))
    lines = done.stdout.decode().strip().splitlines()
    assert lines == ["no cameras found"] if not devices else len(lines) == len(devices)


def test_a_stream_piped_in_at_its_own_pace_is_shown_as_it_comes(tmp_path):
    """Standard input is read as data arrives: Python's buffered reader waited for the 32 KB FFmpeg
    asks for, and a live stream came in bursts of frames, most of them dropped."""
    stream = make_test_video(tmp_path / "stream.ts", width=160, height=120, frames=125, rate=25, audio=False)
    data = stream.read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "live", "--source", "-", "--no-window", "-m",
                                "bicubic"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint)
    pieces = 125  # about a frame each, over 5 s, as a camera sends them
    for index in range(pieces):
        process.stdin.write(data[len(data) * index // pieces:len(data) * (index + 1) // pieces])
        process.stdin.flush()
        if index == 0:  # what comes during its start-up (seconds on busy cores) comes as a burst
            wait_until_blocked(process)
        time.sleep(5 / pieces)
    process.stdin.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    shown, dropped, read = map(int, SUMMARY.search(stderr).groups())
    assert read == 125 and shown >= 0.6 * read, stderr


def test_a_recording_served_over_http_plays_at_its_frame_rate(tmp_path):
    """Its length is known: it plays as a file does, not as fast as it downloads (most frames
    dropped); a live stream, of no known length, comes at its own pace."""
    make_test_video(tmp_path / "served.ts", width=160, height=120, frames=50, rate=25, audio=False)
    with served(tmp_path) as address:
        done = run_srpipe("live", "--source", f"{address}/served.ts", "--no-window", "-m", "bicubic")
    stderr = done.stderr.decode()
    shown, dropped, read = map(int, SUMMARY.search(stderr).groups())
    # played as fast as it downloads, nearly all were dropped; on busy cores live may drop a few
    assert done.returncode == 0 and read == 50 and shown >= 0.6 * read, stderr


@pytest.mark.parametrize(("ends", "recording"), [(True, True), (False, False)])
def test_a_playlist_over_http_is_a_recording_only_where_it_ends(tmp_path, ends, recording):
    """A live HLS playlist (no end tag) comes at its own pace; its file's size says nothing."""
    from srpipe.media import SourceOptions
    from srpipe.video import PyAVSource

    make_test_video(tmp_path / "segment0.ts", frames=25, audio=False)
    (tmp_path / "list.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"
                                        "#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nsegment0.ts\n"
                                        + ("#EXT-X-ENDLIST\n" if ends else ""))
    with served(tmp_path) as address, PyAVSource(f"{address}/list.m3u8", SourceOptions(timeout=5)) as source:
        assert source.is_recording is recording
