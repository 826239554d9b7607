"""Frames without (increasing) timestamps are timed between their neighbours, every valid
timestamp kept; and an MP4 plays every frame written to it."""

from fractions import Fraction

import av
import numpy as np
import pytest

import srpipe.video
from srpipe.errors import SrpipeError
from srpipe.testing import make_test_video
from srpipe.upscaling import upscale

from media import packets, upscale_plugin_frames, video_info

TICK = Fraction(1, 15360)  # an MP4's time base for 30 fps, as FFmpeg writes it


def write_clip(path, ticks, rate=30):
    """A 64x64 H.264 clip with B-frames whose frames are encoded at ``ticks`` (of TICK) and muxed
    as ``path``'s format does (Matroska's milliseconds round frames less than one apart to the
    same time, as a remux of an MP4 with FFmpeg does), of the mean frame ``rate``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"bf": "2"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = TICK
        for index, tick in enumerate(ticks):
            picture = np.full((64, 64, 3), index * 4 % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = tick, TICK
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def played_frames(path):
    """The frames of ``path``'s video that play (not those an MP4's edit list leaves out)."""
    with av.open(str(path)) as container:
        return sum(not entry.is_discard for entry in container.streams.video[0].index_entries)


def test_a_repeated_matroska_timestamp_moves_only_its_frame(tmp_path):
    """20 frames 1/30 s apart, then 20 at 1/10 s: the mean rate's step (1/15 s) after a repeated
    time was given the frames behind it too, 19 moved by up to 0.3 s from their sound."""
    ticks = [0, 1, *(512 * i for i in range(2, 20)), *(10240 + 1536 * i for i in range(20))]
    clip = write_clip(tmp_path / "vfr.mkv", ticks, rate=15)
    with av.open(str(clip)) as container:
        assert container.streams.video[0].average_rate == 15
    before = video_info(clip)["times"]
    assert before[0] == before[1] and len(set(before)) == len(before) - 1  # one repeated (0 ms twice)
    upscale(str(clip), str(tmp_path / "out.mkv"))
    after = video_info(tmp_path / "out.mkv")["times"]
    assert len(after) == len(before)
    assert [t for i, t in enumerate(after) if i != 1] == [t for i, t in enumerate(before) if i != 1]
    assert before[0] < after[1] < before[2]


def test_repeated_timestamps_at_the_end_stay_within_the_video(tmp_path):
    """The last frame's time repeated: the frame goes before where the stream ended (with its sound),
    not a step past it, and an MP4 plays it."""
    ticks = [512 * i for i in range(12)] + [512 * 11 + 1]
    clip = write_clip(tmp_path / "end.mkv", ticks)
    before = video_info(clip)["times"]
    assert before[-1] == before[-2]
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        end = max((p.pts + p.duration) * video.time_base for p in container.demux(video) if p.size)
    upscale(str(clip), str(tmp_path / "out.mp4"))
    after = video_info(tmp_path / "out.mp4")["times"]
    assert after[:-1] == before[:-1] and before[-2] < after[-1] < end
    assert played_frames(tmp_path / "out.mp4") == len(ticks)


def test_one_timestamp_jumped_ahead_moves_only_its_frame(tmp_path):
    """One frame's time a second ahead (setts gone wrong, a damaged file): taken as right, it held
    every later frame as not after it, and after 8 those were timed by the frame rate, all a
    second after their sound. It is the one that takes a time between the frames around it."""
    clean = make_test_video(tmp_path / "clean.mkv", frames=30)  # 25 fps, with sound
    jumped = tmp_path / "jumped.mkv"
    with av.open(str(clean)) as source, av.open(str(jumped), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        number = 0
        for packet in source.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                if number == 10:
                    packet.pts += round(1 / packet.time_base)
                number += 1
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    before = video_info(jumped)["times"]
    assert before[10] - before[9] > 1 and before[11] < before[10]
    with pytest.warns(UserWarning, match="^1 frame of .* had no timestamp, or one not after"):
        upscale(str(jumped), str(tmp_path / "out.mkv"))
    after = video_info(tmp_path / "out.mkv")["times"]
    assert [t for i, t in enumerate(after) if i != 10] == [t for i, t in enumerate(before) if i != 10]
    assert before[9] < after[10] < before[11]


@pytest.mark.parametrize("given, timed, told", [
    ([0, 0, 1, 2, 100], [0, 1, 2, 3, 100], 1),  # no room between 0 and 1: the smallest moves that keep the order
    ([0, 0, 0, 90, 120], [0, 30, 60, 90, 120], 2),
    ([0, 30, 60, 20, 90], [0, 30, 60, 75, 90], 1),  # a time gone back is no time either
    ([0, 30, 1000, 90, 120], [0, 30, 60, 90, 120], 1),  # one jumped ahead of both frames around it: only it moves
    ([0, 60, 30, 90], [0, 15, 30, 90], 1),  # the frame after it is after the frame before: 60 is the wrong one
    ([None, None, 90, 120], [30, 60, 90, 120], 2),  # before the first time: the frame rate's steps (30)
    ([None, None, 75, 105], [15, 45, 75, 105], 2),  # ... not squeezed in after zero where they fit before it
    ([0, None, None], [0, 30, 60], 0),  # the decoder's last frames, untimed (an AVI's): the frame rate's, untold
    ([0] * 12, [30 * i for i in range(12)], 11),  # more than REPAIR_FRAMES: the frame rate's
])
def test_frame_times_replace_only_the_missing_and_repeated(given, timed, told):
    from srpipe.frames import PLANE_FORMATS, Frame
    from srpipe.video import FrameTimes

    planes = (np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))
    times, out = FrameTimes(rate_step=30), []
    for pts in given:
        out += times(Frame(planes, PLANE_FORMATS["yuv420p"], False, pts, TICK))
    out += times.flush(None)
    assert [frame.pts for frame in out] == timed
    assert times.repaired == told


def listed_source_run(tmp_path, frames, output="out.mp4"):
    """Upscale ``frames`` ((pts, duration) in TICK units; 64x64, moving, which the encoder codes
    with B-frames) from a plugin source."""
    from srpipe.frames import PLANE_FORMATS, Frame

    def made():
        for index, (pts, duration) in enumerate(frames):
            luma = np.roll(np.tile(np.arange(64, dtype=np.uint8) * 3, (64, 1)), index, axis=1)
            planes = (luma, np.full((32, 32), 128, np.uint8), np.full((32, 32), 128, np.uint8))
            yield Frame(planes, PLANE_FORMATS["yuv420p"], False, pts, TICK, duration=duration)

    return upscale_plugin_frames(made(), tmp_path / output, time_base=TICK, frame_rate=Fraction(30))


# 12 frames 1/30 s apart, the last shown for one tick (as a re-timed frame was): FFmpeg's MP4 muxer
# rounds the span its edit list plays to milliseconds, which here ends before the last frame begins
BRIEF_LAST = [(7 + 512 * i, 512) for i in range(11)] + [(7 + 512 * 11, 1)]


def test_an_mp4_plays_a_last_frame_shown_for_a_tick(tmp_path):
    result = listed_source_run(tmp_path, BRIEF_LAST)
    assert result.stats.frames_out == len(BRIEF_LAST)
    assert played_frames(tmp_path / "out.mp4") == len(BRIEF_LAST)
    assert len(video_info(tmp_path / "out.mp4")["times"]) == len(BRIEF_LAST)


def test_frames_an_mp4_leaves_out_stop_the_run(tmp_path, monkeypatch):
    """Were a last frame left out of what an MP4 plays, the frame count says so, and nothing is written."""
    monkeypatch.setattr(srpipe.video, "SHORTEST_SHOWN", Fraction(0))
    with pytest.raises(SrpipeError, match=f"{len(BRIEF_LAST)} frames encoded but {len(BRIEF_LAST) - 1} play in"):
        listed_source_run(tmp_path, BRIEF_LAST)
    assert not (tmp_path / "out.mp4").exists()


def test_a_short_matroska_clip_with_primed_sound_starts_where_its_video_does(tmp_path):
    """Video from -0.08 s and AAC sound from 0, its priming before, muxed as Matroska: its writer
    moves both on by 80 ms, the video to start at 0. FFmpeg gives a stream of fewer than 7 H.264
    frames without decoding times no start of its own but the file's, which is where the sound
    starts to play, after its priming: 80 ms. Taken off, that put the video's first two frames
    before zero, and the MP4's edit list hid them."""
    clip = make_test_video(tmp_path / "primed.mkv", frames=6, pts=list(range(-2, 4)))
    with av.open(str(clip)) as container:
        assert container.start_time == 80_000 and container.streams.video[0].start_time == 80  # not its own
    before = video_info(clip)["times"]
    assert before[0] == 0
    upscale(str(clip), str(tmp_path / "out.mp4"))
    assert played_frames(tmp_path / "out.mp4") == 6
    assert video_info(tmp_path / "out.mp4")["times"] == before
    assert packets(tmp_path / "out.mp4", "audio")[0][0] == packets(clip, "audio")[0][0]  # in step


@pytest.mark.parametrize("output", ["out.mkv", "out.webm"])
def test_frames_closer_than_a_millisecond_keep_times_of_their_own_in_matroska(tmp_path, output):
    """A frame 1/90000 s after the one before (MPEG-TS's and this MP4's unit): Matroska's writer
    rounded both to the same millisecond, two frames shown at one time. It takes the next."""
    ticks = [3600 * i for i in range(9)] + [3600 * 8 + 1, 3600 * 10]
    clip = make_test_video(tmp_path / "close.mp4", frames=len(ticks), pts=ticks, time_base=Fraction(1, 90000),
                           audio=False)
    before = video_info(clip)["times"]
    assert before[9] - before[8] == Fraction(1, 90000)
    upscale(str(clip), str(tmp_path / output))
    after = video_info(tmp_path / output)["times"]
    assert after == [*before[:9], before[8] + Fraction(1, 1000), before[10]]


@pytest.mark.parametrize("codec, rate", [("libx264", Fraction(60)), ("libx264", Fraction(30000, 1001)),
                                         ("libx265", Fraction(50))])
def test_a_bare_stream_is_timed_at_its_own_rate(tmp_path, codec, rate):
    """A bare .h264 or .hevc (a camera's, an encoder's) has no frame times, and its demuxer reports
    its own default of 25 fps as the rate: a 60 fps stream came out at 25, two and a half times as
    long. Its headers' timing (as FFmpeg's command reads it) gives the rate."""
    clip = tmp_path / f"raw.{'h264' if codec == 'libx264' else 'hevc'}"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream(codec, rate=rate, options={"x265-params": "log-level=error"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for index in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 20, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    with pytest.warns(UserWarning, match="12 frames of .* had no timestamp"):
        upscale(str(clip), str(tmp_path / "out.mkv"))
    times = video_info(tmp_path / "out.mkv")["times"]
    assert len(times) == 12
    assert float(times[-1] - times[0]) == pytest.approx(11 / rate, abs=0.002)  # Matroska's milliseconds


def test_a_stream_without_times_gives_each_frame_out_as_it_comes():
    """A bare .h264 has no times at all: its frames were held for a timed one that never came and
    given out nine at a time, late (a live stream's frames in bursts)."""
    from srpipe.frames import PLANE_FORMATS, Frame
    from srpipe.video import FrameTimes

    planes = (np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))
    times = FrameTimes(rate_step=30, untimed=True)
    for index in range(12):
        out = times(Frame(planes, PLANE_FORMATS["yuv420p"], False, None, TICK))
        assert [frame.pts for frame in out] == [30 * index]
    assert times.flush(None) == []
