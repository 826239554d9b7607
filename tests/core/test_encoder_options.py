"""x264's and x265's presets are checked before the encoder opens: every spelling the encoder
takes passes, and what it refuses is one line (the encoder would print to the terminal itself).
An encoder opened leaves the process's scheduling as it was."""

import contextlib
import io
import os
import threading

import av
import pytest

from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions
from srpipe.testing import make_test_video
from srpipe.upscaling import upscale
from srpipe.video import encoder_options

TAKEN = {"libx264": ["medium", "MEDIUM", "Slow", "veryfast", "0", "9"], "libx265": ["medium", "placebo", "0", "5"]}
REFUSED = {"libx264": ["warp", "10", "-1"], "libx265": ["MEDIUM", "Slow", "10"]}


def opens(codec: str, options: dict) -> bool:
    container = av.open(io.BytesIO(), "w", format="matroska")
    stream = container.add_stream(codec, rate=25, options=options)
    stream.width = stream.height = 64
    stream.pix_fmt = "yuv420p"
    try:
        container.start_encoding()
    except av.FFmpegError:
        return False
    return True


@pytest.mark.parametrize("codec, preset", [(codec, preset) for codec, presets in TAKEN.items() for preset in presets])
def test_a_preset_the_encoder_takes_is_passed_on(codec, preset):
    options = encoder_options(codec, 18, preset, {})
    assert options["preset"] == preset
    assert opens(codec, options)


@pytest.mark.parametrize("codec, preset", [(codec, p) for codec, presets in REFUSED.items() for p in presets])
def test_a_preset_the_encoder_refuses_is_one_line(codec, preset):
    assert not opens(codec, {"preset": preset})
    with pytest.raises(SrpipeError, match=f"--preset {preset} is not a {codec} preset; use one of ultrafast,"):
        encoder_options(codec, 18, preset, {})


def test_x265_writes_quietly_and_with_the_tag_apple_players_take(tmp_path):
    """x265 prints its settings line by line on every run unless told otherwise, and FFmpeg tags
    HEVC in MP4 as hev1, which QuickTime and iOS refuse to play."""
    import subprocess
    import sys

    from srpipe.testing import make_test_video

    clip = make_test_video(tmp_path / "in.mp4", frames=3)
    done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(clip), "-o", str(tmp_path / "out.mp4"),
                           "--codec", "libx265", "-q"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"
    mine = {"x265-params": "bframes=0"}  # the user's own stand
    assert encoder_options("libx265", 18, None, mine)["x265-params"] == "bframes=0"


@pytest.mark.parametrize("source, codec, supported, chosen", [
    ("yuv444p12le", "libx264", None, "yuv444p10le"),  # ProRes 4444 into x264: its deepest 4:4:4
    ("yuv444p", "mpeg2video", ["yuv420p", "yuv422p"], "yuv422p"),  # the least coarse chroma it takes
    ("yuv420p10le", "h264_nvenc", None, "yuv420p"),  # 10-bit H.264 NVENC: only the newest GPUs
    ("yuv422p10le", "hevc_nvenc", None, "p010le"),  # 4:2:2 NVENC likewise; 10-bit HEVC everywhere
    ("gray", "libvpx-vp9", None, "yuv420p"),
    ("yuv420p16le", "libx264", None, "yuv420p10le"),
])
def test_a_format_the_encoder_lacks_becomes_the_nearest_it_takes(source, codec, supported, chosen):
    from srpipe.frames import PLANE_FORMATS
    from srpipe.video import _encodable, nearest_format

    supported = supported or [f.name for f in av.Codec(codec, "w").video_formats]
    assert nearest_format(PLANE_FORMATS[source], _encodable(codec, supported)) == chosen


def real_time_threads() -> list[int]:
    threads = [int(name) for name in os.listdir("/proc/self/task")]
    found = []
    for thread in threads:
        with contextlib.suppress(OSError):  # ended meanwhile
            if os.sched_getscheduler(thread) in (os.SCHED_FIFO, os.SCHED_RR):
                found.append(thread)
    return found


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="SVT-AV1 makes threads real time only when run as root")
def test_an_av1_encoder_run_as_root_leaves_every_threads_scheduling_as_it_was(tmp_path):
    """SVT-AV1 opened as root made the opening thread real time (SCHED_FIFO at the highest
    priority), and with it its own threads and every thread and process started after."""
    clip = make_test_video(tmp_path / "in.mp4", frames=4, audio=False)
    seen = []  # the real-time threads as each frame is written: SVT-AV1's own are running then
    upscale(str(clip), str(tmp_path / "out.mkv"), model="bicubic",
            sink_options=SinkOptions(codec="libsvtav1", codec_options={"preset": "12"}),
            progress=lambda total: lambda: seen.append(real_time_threads()))
    assert len(seen) == 4 and not any(seen), seen
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="SVT-AV1 makes threads real time only when run as root")
def test_a_thread_that_was_real_time_before_the_encoder_opened_keeps_its_own_priority(tmp_path):
    after = []

    def encode():
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
        make_test_video(tmp_path / "in.mkv", codec="libsvtav1", width=128, height=96, frames=2, audio=False,
                        codec_options={"preset": "12"})
        after.append((os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

    thread = threading.Thread(target=encode)
    thread.start()
    thread.join()
    assert after == [(os.SCHED_RR, 10)]
