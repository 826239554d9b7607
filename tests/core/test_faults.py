"""Bad input, faults and interruptions: one clear line, a non-zero exit, nothing left behind."""

import io
import itertools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.memory import GIB, fit_batch_size
from srpipe.models import ModelSpec
from srpipe.testing import damage_video, make_plugin_manager, make_test_image, make_test_video, test_pattern
from srpipe.upscaling import upscale

from conftest import default_sigint, run_srpipe
from media import audio_only_file, packets, remux, video_info


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def assert_one_line_error(done, *needles):
    stderr = done.stderr.decode() if isinstance(done.stderr, bytes) else done.stderr
    assert done.returncode == 1 if hasattr(done, "returncode") else done.exit_code == 1
    lines = [line for line in stderr.splitlines() if not line.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr


def test_truncated_video_is_refused(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=10)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: gone
    done = run_srpipe("upscale", cut)
    assert_one_line_error(done, "cut.mp4", "complete media file")
    assert listing(tmp_path) == ["clip.mp4", "cut.mp4"]


def test_frames_closer_than_a_gif_times_them_are_refused(tmp_path):
    """GIF times frames in hundredths of a second: a 240 fps video's frames fell on one time, and
    its writer's refusal (EINVAL) was told as a full disk. Moved a hundredth apart, the GIF would
    play at under half the speed: refused, saying what holds them."""
    clip = make_test_video(tmp_path / "quick.mp4", frames=12, rate=240, audio=False)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.gif")
    assert_one_line_error(done, "quick.mp4 has frames less than 1/100 s apart", "write .apng or a video format")
    assert listing(tmp_path) == ["quick.mp4"]


def test_damaged_packets_stop_by_default(tmp_path):
    clip = make_test_video(tmp_path / "clip.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=10, codec_options={})
    bad = damage_video(clip, tmp_path / "bad.mkv", frames=(4, 5))
    done = run_srpipe("upscale", bad)
    assert_one_line_error(done, "bad.mkv is damaged at", "--on-decode-error skip")
    assert listing(tmp_path) == ["bad.mkv", "clip.mkv"]


def test_damaged_packets_skipped_on_request_keep_timestamps(tmp_path):
    clip = make_test_video(tmp_path / "clip.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=10, codec_options={})
    bad = damage_video(clip, tmp_path / "bad.mkv", frames=(4, 5))
    done = run_srpipe("upscale", bad, "--on-decode-error", "skip", "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning: 2 damaged frames of" in done.stderr
    times = video_info(clip)["times"]
    assert video_info(tmp_path / "out.mkv")["times"] == times[:3] + times[5:]


def test_frames_the_decoder_mended_are_kept_and_told(tmp_path):
    """H.264 fills in the blocks of a damaged frame from the picture around them (concealment) and
    passes the frame on without an error, as players show it: upscaled with the others, but said,
    where it went unnoticed before, with the time of the first."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=12, audio=False)
    bad = damage_video(clip, tmp_path / "bad.mp4", frames=(3, 7))
    done = run_srpipe("upscale", bad, "-m", "bicubic", "-o", tmp_path / "out.mp4", "--json")
    assert done.returncode == 0, done.stderr.decode()
    told = rb"Warning: [12] frames? of \S*bad.mp4 came out of the decoder damaged \(the first at 0\.[0-9]+ s\)"
    assert re.search(told, done.stderr), done.stderr.decode()
    assert json.loads(done.stdout)["frames_concealed"] >= 1
    assert video_info(tmp_path / "out.mp4")["times"] == video_info(clip)["times"]
    whole = run_srpipe("upscale", clip, "-m", "bicubic", "-o", tmp_path / "whole.mp4", "--json")
    assert json.loads(whole.stdout)["frames_concealed"] == 0 and b"decoder damaged" not in whole.stderr


def test_av1_frames_the_decoder_leaves_out_without_an_error_are_told(tmp_path):
    """dav1d may drop a damaged AV1 frame without an error: each temporal unit shows one frame, so a
    packet that gave none is told, where the frame went silently before."""
    clip = make_test_video(tmp_path / "clip.mkv", codec="libsvtav1", width=128, height=96, frames=25, audio=False,
                           codec_options={"preset": "12"})
    data = clip.read_bytes()
    with av.open(str(clip)) as container:
        places = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    # a packet whose damage loses a frame, and no packet an error; which one it is depends on the
    # encoder's and the decoder's versions, so the damage starts at a third, a half or a quarter in
    for share, (pos, size) in itertools.product((3, 2, 4), places[1:]):
        damaged = bytearray(data)
        damaged[pos + size // share:pos + size] = bytes(b ^ 0x5A for b in damaged[pos + size // share:pos + size])
        with av.open(io.BytesIO(bytes(damaged))) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                frames = sum(len(stream.codec_context.decode(p)) for p in container.demux(stream))
            except av.FFmpegError:
                continue
        if frames < len(places):
            break
    else:
        pytest.fail("no damage of a single packet lost a frame without an error")
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(damaged))
    done = run_srpipe("upscale", bad, "-m", "bicubic", "-o", tmp_path / "out.mkv", "--json")
    assert done.returncode == 0, done.stderr.decode()
    lost = len(places) - frames
    assert f"Warning: {lost} packet{'s' * (lost != 1)} of {bad} gave no picture" in done.stderr.decode()
    assert json.loads(done.stdout)["frames"] == frames


def test_damage_is_told_at_the_first_frame_it_cost_not_where_frame_threads_noticed(tmp_path):
    """The decoder's frame threads give a packet's error with a packet several later: the message
    named that later time (1.64 s for damage at 1.56 s). It names the first frame that did not
    come out, as a decoder without threads rejects it."""
    clip = make_test_video(tmp_path / "clip.mp4", width=160, height=96, frames=50, audio=False,
                           codec_options={"preset": "ultrafast", "bf": "0", "g": "25"})
    data = clip.read_bytes()
    with av.open(str(clip)) as container:
        places = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    for pos, size in places[30:45]:  # damage from a packet's middle on that the decoder rejects
        damaged = bytearray(data)
        damaged[pos + size // 2:pos + size // 2 + 3000] = bytes(3000)
        with av.open(io.BytesIO(bytes(damaged))) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            rejected = []
            for packet in container.demux(stream):
                try:
                    stream.codec_context.decode(packet)
                except av.FFmpegError:
                    rejected.append(float(packet.pts * packet.time_base))
        if rejected:
            break
    else:
        pytest.fail("no damage of a single packet made the decoder reject one")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(damaged))
    assert_one_line_error(run_srpipe("upscale", bad, "-m", "bicubic", "-o", tmp_path / "out.mp4"),
                          f"bad.mp4 is damaged at {rejected[0]:.3f} s")


def test_audio_only_file_is_refused(tmp_path):
    path = audio_only_file(tmp_path / "sound.m4a")
    assert_one_line_error(run_srpipe("upscale", path), "sound.m4a has no video stream")


def test_a_song_with_a_cover_picture_is_refused_as_sound(tmp_path):
    """A song's cover is a video stream of one picture: it came out as a 1 ms video, its flag and
    the sound's point lost, after a warning that its frame had no timestamp."""
    path = tmp_path / "song.mp4"
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=48000)
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        jpeg = io.BytesIO()
        Image.new("RGB", (64, 48), "red").save(jpeg, "JPEG")
        packet = av.Packet(jpeg.getvalue())
        packet.stream, packet.pts, packet.dts = cover, 0, 0
        container.mux(packet)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
    assert_one_line_error(run_srpipe("upscale", path, "-o", tmp_path / "out.mp4"),
                          "song.mp4 holds no video but a cover picture", "-an -frames:v 1 cover.png")
    assert listing(tmp_path) == ["song.mp4"]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root reads any file, and setpriv (util-linux), to run as nobody, is missing")
def test_a_video_one_may_not_read_is_told_so(tmp_path):
    """'Permission denied; check that it is a complete media file' sent the user to the wrong place."""
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(dir="/tmp")) if as_root else tmp_path  # where nobody may go
    try:
        base.chmod(0o777)
        clip = make_test_video(base / "clip.mp4", frames=3)
        clip.chmod(0)
        command = [sys.executable, "-m", "srpipe", "upscale", str(clip), "-o", str(base / "out.mp4")]
        if as_root:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        done = subprocess.run(command, capture_output=True, cwd=base, timeout=120,
                              env={**os.environ, "HOME": str(base), "XDG_CACHE_HOME": str(base / "cache")})
        assert_one_line_error(done, f"cannot read {clip}: Permission denied; check that you may read it")
    finally:
        if as_root:
            shutil.rmtree(base)


def test_video_stream_without_frames_is_refused(tmp_path):
    path = tmp_path / "empty.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(audio.encode(frame))
    done = run_srpipe("upscale", path)
    assert_one_line_error(done, "empty.mkv has no video frames")
    assert listing(tmp_path) == ["empty.mkv"]


def test_tiny_frames(tmp_path):
    clip = make_test_video(tmp_path / "one.mkv", codec="ffv1", width=1, height=1, frames=3, audio=False)
    result = upscale(str(clip), scale=2, pm=make_plugin_manager())
    info = video_info(result.output)
    assert (info["width"], info["height"], len(info["times"])) == (2, 2, 3)


def test_image_named_mp4_is_read_as_an_image(tmp_path):
    fake = make_test_image(tmp_path / "picture.png")
    fake = fake.rename(tmp_path / "picture.mp4")
    result = upscale(str(fake), scale=2, pm=make_plugin_manager())
    assert result.output.endswith("picture_x2.png")
    done = run_srpipe("upscale", fake, "-o", tmp_path / "out.mp4")
    assert_one_line_error(done, "is an image; name the output .png")


def test_video_named_png_is_read_as_a_video(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=4).rename(tmp_path / "clip.png")
    result = upscale(str(clip), scale=2, pm=make_plugin_manager())
    assert result.output.endswith("clip_x2.mp4")
    assert len(video_info(result.output)["times"]) == 4


@pytest.mark.parametrize("mode", ["P", "CMYK", "L", "I;16"])
def test_palette_cmyk_grey_and_16_bit_grey_images(tmp_path, mode):
    pattern = np.add.outer(np.arange(12), np.arange(16)).astype(np.uint8) * 9
    image = Image.fromarray(pattern).convert(mode if mode != "I;16" else "I")
    path = tmp_path / ("in.jpg" if mode == "CMYK" else "in.png")
    if mode == "I;16":
        image = Image.fromarray(pattern.astype(np.uint16) * 257)
    image.save(path)
    result = upscale(str(path), scale=2, pm=make_plugin_manager())
    out = np.asarray(Image.open(result.output))
    assert out.shape[:2] == (24, 32)


def test_disk_full_leaves_nothing(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", width=160, height=120, frames=30)

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run(
        [sys.executable, "-m", "srpipe", "upscale", str(clip), "-s", "4", "-q"],
        capture_output=True, preexec_fn=limit_file_size, timeout=120,
    )
    assert_one_line_error(done, "cannot write", "File too large")
    assert listing(tmp_path) == ["clip.mp4"]





@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_cleanly(tmp_path, signum, code):
    from plugin_helpers import SLOW_PLUGIN, fake_plugin

    site = fake_plugin(tmp_path / "site", "slow_plugin", SLOW_PLUGIN)
    work = tmp_path / "work"
    work.mkdir()
    clip = make_test_video(work / "clip.mp4", frames=60)
    env = {**os.environ, "PYTHONPATH": str(site)}
    process = subprocess.Popen(
        [sys.executable, "-m", "srpipe", "upscale", str(clip), "-m", "slow", "--batch-size", "1"],
        env=env, stderr=subprocess.PIPE, preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while not any(".partial." in name for name in listing(work)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert listing(work) == ["clip.mp4"]


class FailingUpscaler:
    scale = 2

    def __init__(self):
        self.calls = 0

    def upscale(self, luma, *, bit_depth, full_range):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("model exploded on batch 3")
        return luma.repeat(2, axis=1).repeat(2, axis=2)


class FailingPlugin:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="explodes", scales=(2,), description="raises", load=lambda **kw: FailingUpscaler()))


@pytest.mark.parametrize("threaded", [True, False])
def test_error_in_a_stage_stops_the_others_and_surfaces(tmp_path, threaded):
    clip = make_test_video(tmp_path / "clip.mp4", frames=40)
    pm = make_plugin_manager()
    pm.register(FailingPlugin())
    threads_before = threading.active_count()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="model exploded on batch 3"):
        upscale(str(clip), model="explodes", batch_size=2, threaded=threaded, pm=pm)
    assert time.monotonic() - started < 30
    assert threading.active_count() == threads_before
    assert listing(tmp_path) == ["clip.mp4"]


def test_junk_from_an_upscaler_is_named(tmp_path):
    class Junk(FailingUpscaler):
        def upscale(self, luma, *, bit_depth, full_range):
            return luma  # wrong size

    class JunkPlugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="junk", scales=(2,), description="wrong size", load=lambda **kw: Junk()))

    pm = make_plugin_manager()
    pm.register(JunkPlugin())
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    with pytest.raises(SrpipeError,
                       match="model 'junk' returned uint8 \\(3, 48, 64\\); expected uint8 \\(3, 96, 128\\)"):
        upscale(str(clip), model="junk", pm=pm)
    assert listing(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize("name", ["with space.mp4", "quo'te\"s.mp4", "new\nline.mp4", "ünï©ødé.mp4", "-dash.mp4"])
def test_awkward_file_names(tmp_path, name):
    clip = make_test_video(tmp_path / name, frames=3)
    done = run_srpipe("upscale", "-q", "--", clip.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / (clip.stem + "_x2.mp4")).exists()


def test_frames_too_large_for_memory_are_refused_with_the_size_needed():
    class Model:
        working_bytes_per_output_pixel = 8

    with pytest.raises(SrpipeError,
                       match=r"a 7680x4320 frame upscaled x4 needs about 7\.7 GiB, over the 1\.6 GiB srpipe "
                             r"takes of the 2\.0 GiB free"):
        fit_batch_size(7680, 4320, 4, 8, 1, Model(), available=2 * GIB)
    with pytest.warns(UserWarning, match="--batch-size lowered from 8 to 3"):
        assert fit_batch_size(1920, 1080, 4, 8, 1, Model(), available=2 * GIB) == 3
    assert fit_batch_size(640, 360, 2, 8, 1, Model(), available=2 * GIB) == 8


def test_a_stream_joined_mid_way_says_what_it_left_out(tmp_path):
    """The packets before the first keyframe refer to pictures before the stream: the decoder
    leaves them out without an error, so srpipe says how many."""
    clip = make_test_video(tmp_path / "whole.ts", frames=50, audio=False, codec_options={"g": "25", "bf": "0"})
    data = clip.read_bytes()
    joined = tmp_path / "joined.ts"
    joined.write_bytes(data[188 * 40:])  # joined a few frames after the first keyframe, on a TS packet boundary
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    (warning,) = [line for line in done.stderr.decode().splitlines() if "gave no picture" in line]
    left_out = int(warning.split()[1])
    assert warning == (f"Warning: {left_out} packets of {joined} gave no picture and are left out (as where a "
                       "stream is joined mid-way, before its first keyframe, or damage made the decoder drop a frame)")
    with av.open(str(joined)) as container:
        packets = sum(1 for packet in container.demux(video=0) if packet.size)
    assert 0 < left_out < 25 and len(video_info(tmp_path / "out.mkv")["times"]) == packets - left_out
    assert "gave no picture" not in run_srpipe("upscale", clip, "-o", tmp_path / "whole.mkv").stderr.decode()


def test_a_stream_joined_mid_way_that_pauses_later_is_not_called_damaged(tmp_path):
    """The packets it begins with that give no picture are no damage: a pause up to a keyframe
    later in it (recordings joined after a pause) is kept, as in a whole stream."""
    times = list(range(30)) + list(range(45, 75))  # 15 frames' pause, up to the keyframe every 10th frame is
    clip = make_test_video(tmp_path / "whole.ts", frames=60, pts=times, audio=False,
                           codec_options={"g": "10", "bf": "0", "sc_threshold": "0"})
    joined = tmp_path / "joined.ts"
    joined.write_bytes(clip.read_bytes()[188 * 40:])
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv", "-q")
    said = done.stderr.decode()
    assert done.returncode == 0, said
    assert "gave no picture" in said and "damaged" not in said
    left_out = int(re.search(r"Warning: (\d+) packets", said)[1])
    with av.open(str(joined)) as container:
        packets = sum(1 for packet in container.demux(video=0) if packet.size)
    assert len(video_info(tmp_path / "out.mkv")["times"]) == packets - left_out


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to trim without encoding")
def test_an_mp4_trimmed_without_encoding_warns_of_nothing(tmp_path):
    """Its edit list starts after the keyframe: the packets before are discarded on purpose."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=50, audio=False, codec_options={"g": "25"})
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.5", "-i", clip, "-c", "copy", trimmed], check=True)
    done = run_srpipe("upscale", trimmed, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0 and "gave no picture" not in done.stderr.decode(), done.stderr.decode()


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_sound_an_mp4_cut_away_stays_cut_away(tmp_path, suffix):
    """A writer without edit lists would play the sound before the cut, and the picture after it."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=60, audio=True)
    cut = remux(clip, tmp_path / "cut.mp4", sound_before=1.0)
    with av.open(str(cut)) as container:
        assert sum(packet.is_discard for packet in container.demux(audio=0)) > 40  # the second cut away
    out = tmp_path / f"out{suffix}"
    done = run_srpipe("upscale", cut, "-o", out, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        video_start, audio_start = float(video.start_time * video.time_base), float(audio.start_time * audio.time_base)
        duration = container.duration / av.time_base
    assert video_start < 0.1 and abs(audio_start - video_start) < 0.05 + 0.001 * (suffix == ".ts")
    assert duration < 2.6  # the cut's 2.4 s (with the sound's priming), not 3.4


def cut_in_decoding_order(clip, cut, seconds: float):
    """``clip``'s video packets up to ``seconds`` of decoding time, remuxed as they are, as a
    cut by stream copy (``ffmpeg -t ... -c copy``) ends: the B-frames shown before the last
    packet kept but decoded after it are not in the file. The cut's frame times."""
    with av.open(str(clip)) as source, av.open(str(cut), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None and packet.dts * packet.time_base < seconds:
                packet.stream = stream
                target.mux(packet)
    return video_info(cut)["times"]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_cut_ending_in_decoding_order_is_not_damaged(tmp_path, suffix):
    """The frames a stream copy cut leaves out at its end were never in the file: no "lost"."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=40, audio=False, codec_options={"bf": "3", "g": "40"})
    cut = tmp_path / f"cut{suffix}"
    times = cut_in_decoding_order(clip, cut, 1.0)
    steps = np.diff(times)
    assert steps.max() > 1.5 * steps.min()  # the cut's last frames have gaps, as ffmpeg's own cut gives
    done = run_srpipe("upscale", cut, "-o", tmp_path / f"out{suffix}")
    assert done.returncode == 0, done.stderr.decode()
    assert "damaged" not in done.stderr.decode() and "Warning" not in done.stderr.decode()
    assert video_info(tmp_path / f"out{suffix}")["times"] == times  # every frame, shown when the cut shows it


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to cut without encoding")
def test_mp4s_cut_by_ffmpeg_stream_copy_are_upscaled_whole(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=60, audio=False,
                           codec_options={"bf": "3", "g": "30", "x264-params": "b-adapt=0"})
    gaps = 0
    for length in ("0.96", "1.04", "1.08", "1.2"):  # where a cut ends within a group of B-frames, it shows gaps
        cut = tmp_path / f"cut{length}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.5", "-t", length, "-i", clip, "-c", "copy", cut], check=True)
        times = video_info(cut)["times"]
        gaps += np.diff(times).max() > 1.5 * np.diff(times).min()
        done = run_srpipe("upscale", cut, "-o", tmp_path / "out.mp4", "--overwrite", "-q")
        assert done.returncode == 0, done.stderr.decode()
        assert video_info(tmp_path / "out.mp4")["times"] == times
    assert gaps  # the case this is about was met


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_frames_left_out_on_purpose_are_no_damage(tmp_path, suffix):
    """A valid file may skip frames (a phone drops some, a screen recording its duplicates): the
    gaps in its timestamps are kept as they are, without a word; only a demuxer that flags damage
    makes them lost frames (tests/core/test_hostile.py)."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=40, audio=False,
                           codec_options={"bf": "3", "g": "40", "x264-params": "b-pyramid=none"})
    holed = tmp_path / f"holed{suffix}"
    with av.open(str(clip)) as source, av.open(str(holed), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        packets = [packet for packet in source.demux(video=0) if packet.dts is not None]
        # B-frames (each shown before the packet decoded before it): without a pyramid nothing refers to them
        dropped = [b for a, b in zip(packets[10:30], packets[11:31]) if b.pts < a.pts][::3]
        for packet in packets:
            if packet not in dropped:
                packet.stream = stream
                target.mux(packet)
    times = video_info(holed)["times"]
    assert len(times) == 40 - len(dropped) >= 40 - 5
    done = run_srpipe("upscale", holed, "-o", tmp_path / f"out{suffix}")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    assert video_info(tmp_path / f"out{suffix}")["times"] == times


def test_recordings_joined_end_to_end_in_mpegts_are_no_damage(tmp_path):
    """``cat first.ts second.ts``: the joint is flagged corrupt (its packet counters restart) and
    the timestamps jump; the first ends as a stream copy cut does, in gaps."""
    first, second = tmp_path / "first.ts", tmp_path / "second.ts"
    cut_in_decoding_order(make_test_video(tmp_path / "a.mp4", frames=40, audio=False, codec_options={
        "bf": "3", "g": "40", "x264-params": "b-adapt=0"}), first, 1.0)
    later = make_test_video(tmp_path / "b.mp4", frames=20, audio=False, pts=[100 * 25 + i for i in range(20)],
                            time_base=Fraction(1, 25))
    cut_in_decoding_order(later, second, 200.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with av.open(str(joined)) as container:
        assert any(packet.is_corrupt for packet in container.demux(video=0))
    times = video_info(joined)["times"]
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.ts", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "out.ts")["times"]) == len(times)


def test_recordings_joined_after_a_short_pause_are_kept_and_told(tmp_path):
    """``cat a.ts b.ts`` where b was recorded 1.8 s after a ended (a recorder restarted, HLS segments
    across a discontinuity): the joint is flagged corrupt and the gap, shorter than a jump FFmpeg
    closes up, was counted as about 44 lost frames, the upscale refused ("is damaged") and with
    --on-decode-error skip told frames skipped that were never there. The gap ends at the second
    recording's keyframe; a loss mid-way leaves frames that refer to what was lost."""
    part = make_test_video(tmp_path / "part.mp4", frames=30, codec_options={"preset": "ultrafast", "g": "10"})
    first, second = shifted_ts(part, tmp_path / "first.ts", 0.0), shifted_ts(part, tmp_path / "second.ts", 3.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with av.open(str(joined)) as container:  # its packet counters restart
        assert any(packet.is_corrupt for packet in container.demux(video=0))
    times = video_info(joined)["times"]
    assert len(times) == 60 and 1.7 < times[30] - times[29] < 1.9
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert [line for line in done.stderr.decode().splitlines() if line.startswith("Warning")] == [
        f"Warning: {joined}'s times skip 1.78 s at 1.18 s, up to a keyframe (recordings joined after a pause?): "
        "the picture before holds as long, as players show it"]
    out = video_info(tmp_path / "out.mkv")["times"]
    assert np.allclose(np.array(out, float) - float(out[0]), np.array(times, float) - float(times[0]), atol=0.002)


def test_packets_lost_from_a_stream_of_keyframes_are_still_damage(tmp_path):
    """In a stream of keyframes alone every gap ends at a keyframe, as a recording joined after a
    pause begins at one: a loss there was taken for a pause. The frame the loss cut short (the
    decoder mends it) tells it. (A loss of whole frames alone cannot be told from a pause: that
    is told as one.)"""
    clip = make_test_video(tmp_path / "clip.ts", frames=100, width=320, height=240, audio=False,
                           codec_options={"g": "1"})
    data = clip.read_bytes()
    packets_in = len(data) // 188
    lost = tmp_path / "lost.ts"
    lost.write_bytes(data[:188 * (packets_in * 2 // 5)] + data[188 * (packets_in * 11 // 20):])
    done = run_srpipe("upscale", lost, "-m", "bicubic", "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, "lost.ts is damaged")
    assert listing(tmp_path) == ["clip.ts", "lost.ts"]


def test_a_file_that_grows_while_it_is_read_is_told(tmp_path):
    """A recording still being written was upscaled up to where it was read, exit 0, without a word."""
    from srpipe.media import SourceOptions
    from srpipe.video import PyAVSource

    part = make_test_video(tmp_path / "part.ts", frames=10, audio=False).read_bytes()
    growing = tmp_path / "growing.ts"
    growing.write_bytes(part)
    with PyAVSource(str(growing), SourceOptions()) as source:
        with open(growing, "ab") as file:  # the recorder writes on
            file.write(part)
        with pytest.warns(UserWarning, match="growing.ts grew while it was read"):
            list(source.items())


def shifted_ts(clip, target, seconds, kinds=("video", "audio")):
    """``clip``'s streams of ``kinds`` remuxed into MPEG-TS with every timestamp ``seconds`` later: a
    later recording (past 2**33 / 90 kHz, 95443.7 s, MPEG-TS's clock wraps)."""
    with av.open(str(clip)) as source, av.open(str(target), "w", format="mpegts") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams
                   if stream.type in kinds}
        for packet in source.demux():
            if packet.dts is not None and packet.stream.index in streams:
                step = round(seconds / packet.time_base)
                packet.pts, packet.dts = packet.pts + step, packet.dts + step
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return target


@pytest.mark.parametrize("order", ["forward", "back", "again"])
def test_recordings_joined_end_to_end_play_one_after_the_other(tmp_path, order):
    """``cat a.ts b.ts``: the second recording's times jump 100 s ahead of the first's (or back,
    or to the first's own start: one recording joined to itself). The output held the jump (a
    picture frozen for 100 s), or refused audio that went back; FFmpeg's command closes it up."""
    part = make_test_video(tmp_path / "part.mp4", frames=25)  # 1 s, and audio
    first, second = tmp_path / "first.ts", tmp_path / "second.ts"
    shifted_ts(part, first, 100.0 if order == "back" else 0.0)
    shifted_ts(part, second, 100.0 if order == "forward" else 0.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert [line for line in done.stderr.decode().splitlines() if line.startswith("Warning")] == [
        f"Warning: {joined} holds recordings joined end to end (its times jump at 1.0 s): they play one after "
        "the other, as FFmpeg plays them"]  # in the output's times, which start at zero
    times = video_info(tmp_path / "out.mkv")["times"]
    steps = np.diff(np.array(times, dtype=float))
    # one frame after the other at 25 fps; at the joint the second recording's sound and picture keep their
    # step, and its picture follows the first's sound
    assert len(times) == 50 and steps.min() > 0 and steps.max() < 0.1
    audio = [time for time, _ in packets(tmp_path / "out.mkv", "audio")]
    assert len(audio) == 2 * len(packets(part, "audio"))
    assert all(b > a for a, b in zip(audio, audio[1:])) and abs(audio[-1] - times[-1]) < 0.1  # in step


@pytest.mark.parametrize("output", ["out.mp4", "out.mkv"])
def test_a_recording_that_starts_late_is_upscaled_to_start_at_zero(tmp_path, output):
    """MPEG-TS starts at 1.4 s, a broadcast recording at hours: the output kept those times, and an
    MP4 opened with a blank as long (an empty edit), where FFmpeg's command starts at zero."""
    part = make_test_video(tmp_path / "part.mp4", frames=25)
    late = shifted_ts(part, tmp_path / "late.ts", 3600.0)
    done = run_srpipe("upscale", late, "-o", tmp_path / output, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / output)) as container:
        assert container.start_time is not None and abs(container.start_time) < 50_000  # microseconds
        assert container.duration / av.time_base < 1.2
    times, before = video_info(tmp_path / output)["times"], video_info(late)["times"]
    assert [t - times[0] for t in times] == [t - before[0] for t in before]  # moved as a whole
    audio = packets(tmp_path / output, "audio")
    assert abs(audio[0][0] - times[0]) < 0.1  # the sound where it was beside the picture


def test_a_recording_whose_clock_wraps_keeps_every_frame(tmp_path):
    """FFmpeg reads MPEG-TS whose 33-bit clock wraps within it as starting before zero: an MP4
    output started there, and its edit list hid the frames before zero (21 of 75 in a user's clip)."""
    part = make_test_video(tmp_path / "part.mp4", frames=25)
    wraps = shifted_ts(part, tmp_path / "wraps.ts", 2**33 / 90000 - 0.5)
    with av.open(str(wraps)) as container:
        assert container.start_time < 0
    done = run_srpipe("upscale", wraps, "-o", tmp_path / "out.mp4", "-q")
    assert done.returncode == 0, done.stderr.decode()
    times = video_info(tmp_path / "out.mp4")["times"]
    assert len(times) == 25 and 0 <= times[0] < Fraction(1, 10)


def test_a_joint_where_the_next_recording_carries_sound_where_the_picture_was_is_no_crash(tmp_path):
    """``cat a.ts sound-only.ts b.ts``: the sound-only recording carries its sound on the PID of
    the others' picture, so that for a while the stream says audio while its decoder is the
    picture's: closing up the joint asked that decoder for its audio frame size (AttributeError)."""
    part = make_test_video(tmp_path / "part.mp4", frames=25)
    pieces = [shifted_ts(part, tmp_path / "a.ts", 0.0), shifted_ts(part, tmp_path / "sound.ts", 40.0, kinds=("audio",)),
              shifted_ts(part, tmp_path / "b.ts", 100.0)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(piece.read_bytes() for piece in pieces))
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "unexpected" not in done.stderr.decode() and video_info(tmp_path / "out.mkv")["times"]


@pytest.mark.parametrize("output", ["out.mp4", "out.mkv", "-"])
def test_a_silent_recording_joined_before_one_with_sound_keeps_all_the_sound(tmp_path, output):
    """``cat silent.ts sound.ts``: the file's header lists the sound of the second recording
    without its sample rate, which every writer refused ("sample rate not set"); and MPEG-TS then
    times only the first of the frames of sound in each of its packets, the others were left out."""
    part = make_test_video(tmp_path / "part.mp4", frames=50)  # 2 s, and audio
    joined = tmp_path / "joined.ts"
    joined.write_bytes(shifted_ts(part, tmp_path / "a.ts", 0.0, kinds=("video",)).read_bytes()
                       + shifted_ts(part, tmp_path / "b.ts", 100.0).read_bytes())
    with av.open(str(joined)) as container:
        assert container.streams.audio[0].sample_rate == 0  # what the header says
    written = tmp_path / ("streamed.mkv" if output == "-" else output)
    done = run_srpipe("upscale", joined, "-o", output, "-q", *(("--format", "matroska") if output == "-" else ()),
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    if output == "-":
        written.write_bytes(done.stdout)
    assert len(video_info(written)["times"]) == 100
    sound, picture = packets(written, "audio"), packets(part, "audio")
    assert [data[-20:] for _, data in sound] == [data[-20:] for _, data in picture]  # every frame (ADTS headers aside)
    assert abs(sound[0][0] - 2) < 0.1 and all(b > a for (a, _), (b, _) in zip(sound, sound[1:]))


def _ffmpeg_ts(path, *args, seconds="2", offset="0"):
    """An MPEG-TS by FFmpeg's command, whose writer packs several frames of sound in a packet."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={seconds}",
                    *args, "-c:v", "libx264", "-output_ts_offset", offset, "-f", "mpegts", str(path)], check=True)
    return path


def _samples(path):
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program, whose MPEG-TS writer packs sound")
def test_sound_that_mpeg_ts_times_only_in_part_keeps_every_frame(tmp_path):
    """FFmpeg's command packs several frames of sound in each MPEG-TS packet, timed only the first;
    where the probe did not know the sample rate (a silent recording joined before), the demuxer
    times none of the others, and srpipe left them out (7 of 88 frames of sound kept)."""
    silent = _ffmpeg_ts(tmp_path / "silent.ts")
    sound = _ffmpeg_ts(tmp_path / "sound.ts", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", offset="100")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(silent.read_bytes() + sound.read_bytes())
    with av.open(str(joined)) as container:
        assert any(packet.dts is None for packet in container.demux(audio=0) if packet.size)
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert _samples(tmp_path / "out.mkv") == _samples(sound)
    sound_times = [time for time, _ in packets(tmp_path / "out.mkv", "audio")]
    assert all(b > a for a, b in zip(sound_times, sound_times[1:])) and abs(sound_times[0] - 2) < 0.1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to write MP2 in MPEG-TS")
def test_sound_encoded_again_through_a_change_of_channels(tmp_path):
    """A broadcast's sound goes from mono to stereo: encoding it again into WebM raised PyAV's
    'Frame does not match AudioResampler setup' (an unexpected ValueError)."""
    parts = [_ffmpeg_ts(tmp_path / f"{channels}.ts", "-f", "lavfi", "-i", "sine=duration=1", "-ac", str(channels),
                        "-c:a", "mp2", seconds="1", offset=str(100 * channels)) for channels in (1, 2)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    done = run_srpipe("upscale", joined, "-o", tmp_path / "out.webm", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "it is encoded again as libopus" in done.stderr.decode()
    with av.open(str(tmp_path / "out.webm")) as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / 48000
    assert abs(seconds - 2) < 0.15


def test_a_listed_sound_track_that_carries_nothing_is_left_out_with_a_warning(tmp_path):
    """A broadcast lists a sound track that carries nothing (a second language not on air): with
    no sample rate to write, every writer refused the whole file."""
    part = make_test_video(tmp_path / "part.mp4", frames=25)
    recording = tmp_path / "in.ts"
    with av.open(str(part)) as source, av.open(str(recording), "w", format="mpegts") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        out.add_stream_from_template(source.streams.audio[0])  # listed, never carried
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
    with av.open(str(recording)) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
    done = run_srpipe("upscale", recording, "-o", tmp_path / "out.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().splitlines()[0] == (
        f"Warning: the audio stream #1 (aac) of {recording} is not copied: none of its first packets, nor the "
        "file's header, tell its sample rate (a track that carries no sound?)")
    assert video_info(tmp_path / "out.mp4")["types"] == ["video"]


def test_a_stream_that_begins_partway_through_standard_input_is_no_crash(tmp_path):
    """Read from a pipe, the probe does not find the sound of the second recording; PyAV's end of
    the streams then met it and raised IndexError."""
    part = make_test_video(tmp_path / "part.mp4", frames=50)
    joined = (shifted_ts(part, tmp_path / "a.ts", 0.0, kinds=("video",)).read_bytes()
              + shifted_ts(part, tmp_path / "b.ts", 100.0).read_bytes())
    done = run_srpipe("upscale", "-", "-o", tmp_path / "out.mkv", "-q", input=joined)
    assert done.returncode == 0, done.stderr.decode()
    assert "unexpected" not in done.stderr.decode() and len(video_info(tmp_path / "out.mkv")["times"]) == 100


def test_damaged_sound_in_mpegts_is_told_as_damage_and_left_out_when_skipping(tmp_path):
    """A broadcast recording's damaged ADTS sound: the writer's filter into MP4's or Matroska's AAC
    refuses the packet, which was told as "cannot write ...: check free space and permissions",
    and --on-decode-error skip did not help."""
    recording = bytearray(shifted_ts(make_test_video(tmp_path / "part.mp4", frames=25), tmp_path / "in.ts", 0.0)
                          .read_bytes())
    sound = [i for i in range(len(recording) // 188)
             if (recording[i * 188 + 1] & 0x1F) << 8 | recording[i * 188 + 2] == 0x101]  # its second stream's PID
    for i in sound[10:12]:
        recording[i * 188 + 4:(i + 1) * 188] = bytes(184)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(recording))
    done = run_srpipe("upscale", damaged, "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, f"the audio stream #1 of {damaged} is damaged at ", "rerun with --on-decode-error skip")
    assert not (tmp_path / "out.mkv").exists()
    done = run_srpipe("upscale", damaged, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert re.search(r"Warning: \d damaged packets? of the sound and other streams of .* left out",
                     done.stderr.decode())
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 25
    assert 0 < len(packets(tmp_path / "out.mkv", "audio")) < len(packets(damaged, "audio"))


def _broadcast_with_mp2(path, seconds=2, rate=25):
    """MPEG-TS as DVB sends it: H.264 and MPEG-1 Layer II sound."""
    with av.open(str(path), "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt, video.options = 160, 96, "yuv420p", {"preset": "ultrafast"}
        sound = out.add_stream("mp2", rate=48000)
        sound.layout = "mono"
        for index in range(seconds * rate):
            frame = av.VideoFrame.from_ndarray(test_pattern(160, 96, index), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for start in range(0, seconds * 48000, 1152):
            tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(start, start + 1152) / 48000)).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return path


def test_sound_retimed_by_lost_mpegts_packets_is_told_as_damage_and_left_out_when_skipping(tmp_path):
    """Three TS packets of MP2 sound lost: the demuxer gives the pieces around the gap times that go
    back, or repeat the one before. Told as "cannot write ...: check free space" (MP4's writer
    refuses a repeated time) or as recordings joined end to end; skipping did not help."""
    recording = _broadcast_with_mp2(tmp_path / "in.ts").read_bytes()
    cells = [recording[i:i + 188] for i in range(0, len(recording), 188)]
    sound = [i for i, cell in enumerate(cells) if (cell[1] & 0x1F) << 8 | cell[2] == 0x101]  # its second PID
    found = {}
    for first in range(len(sound) // 3, len(sound) - 3):  # the first losses of each kind
        lost = set(sound[first:first + 3])
        damaged = b"".join(cell for i, cell in enumerate(cells) if i not in lost)
        with av.open(io.BytesIO(damaged), format="mpegts") as container:
            times = [p.dts for p in container.demux(audio=0) if p.dts is not None]
        steps = {np.sign(b - a) for a, b in zip(times, times[1:]) if b <= a}
        for step in steps - set(found):
            found[step] = damaged
        if len(found) == 2:
            break
    assert set(found) == {-1, 0}
    for step, data in found.items():
        damaged = tmp_path / f"damaged{step}.ts"
        damaged.write_bytes(data)
        done = run_srpipe("upscale", damaged, "-m", "bicubic", "-o", tmp_path / "out.mp4")
        assert_one_line_error(done, f"the audio stream #1 of {damaged} is damaged at ",
                              "rerun with --on-decode-error skip")
        assert not (tmp_path / "out.mp4").exists()
        done = run_srpipe("upscale", damaged, "-m", "bicubic", "-o", tmp_path / "out.mp4", "--on-decode-error", "skip")
        assert done.returncode == 0, done.stderr.decode()
        assert re.search(r"Warning: \d+ damaged packets? of the sound and other streams of .* left out",
                         done.stderr.decode()), done.stderr.decode()
        assert len(video_info(tmp_path / "out.mp4")["times"]) == 50
        (tmp_path / "out.mp4").unlink()


def test_a_size_or_format_change_is_brought_to_the_first_frames_as_ffmpeg_does(tmp_path):
    """A broadcast switches size for its adverts; recordings joined end to end differ. The upscale
    stopped there (and a stream on standard output lost the frames in flight before the change);
    FFmpeg's command scales and converts the frames from there to the first's, as now, with a word."""
    parts = [make_test_video(tmp_path / f"{i}.ts", width=w, height=h, frames=5, audio=False, pix_fmt=pix_fmt)
             for i, (w, h, pix_fmt) in enumerate(((64, 48, "yuv420p"), (96, 64, "yuv420p"), (64, 48, "yuv444p")))]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    done = run_srpipe("upscale", joined, "-m", "bicubic", "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert f"Warning: {joined} changes from 64x48 yuv420p to 96x64 yuv420p at 0.200 s: the frames from there are " \
        "brought to the first's size and format, as FFmpeg's command brings them" in done.stderr.decode()
    info = video_info(tmp_path / "out.mkv")
    assert len(info["luma"]) == 15 and {luma.shape for luma in info["luma"]} == {(96, 128)}
    second = video_info(parts[1])["luma"][0]  # its picture, not another's: the first part's scaled the same way
    expected = cv2.resize(cv2.resize(second, (64, 48), interpolation=cv2.INTER_CUBIC), (128, 96),
                          interpolation=cv2.INTER_CUBIC)
    assert np.abs(info["luma"][5].astype(int) - expected).mean() < 4


def test_subtitles_mpeg_ts_cannot_carry_are_refused_not_written_as_data(tmp_path):
    clip = make_test_video(tmp_path / "clip.mkv", frames=5, subtitles=True)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.ts")
    assert_one_line_error(done, "cannot hold the subtitle stream #2 (ssa)", "MPEG-TS carries subtitles only as",
                          "write a .mkv instead")
    assert listing(tmp_path) == ["clip.mkv"]


def test_asf_with_b_frames_is_read_whole(tmp_path):
    """ASF stores no presentation times for its reference frames (the demuxer makes them up, as
    FFmpeg's command does), and a writer's rounding leaves its stated length a frame long."""
    clip = make_test_video(tmp_path / "clip.asf", frames=50, codec="mpeg4", audio=False, codec_options={"bf": "2"})
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 50


def test_a_slow_pipe_that_never_stops_gives_no_stall_warning(tmp_path):
    """A large frame that takes longer than --timeout to come, its data arriving all the while:
    standard input is timed by its own waits, and it did not wait."""
    clip = make_test_video(tmp_path / "big.ts", width=480, height=360, frames=2, audio=False,
                           codec_options={"qp": "0", "preset": "ultrafast"})  # frames of some 165 KB
    data = clip.read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "upscale", "-", "-o", str(tmp_path / "out.mkv"),
                                "-m", "bicubic", "--timeout", "2", "-q"], stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=default_sigint)
    for start in range(0, len(data), 8192):  # a frame in 4 s, never more than 0.2 s without data
        process.stdin.write(data[start:start + 8192])
        process.stdin.flush()
        time.sleep(0.2)
    process.stdin.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and "sent no data" not in stderr, stderr
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 2
