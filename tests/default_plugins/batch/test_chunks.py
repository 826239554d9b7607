"""Long videos split at keyframes, upscaled in parts and joined: frame-exact, timestamps
and streams kept, same frames as one process when encoded losslessly; parts resume."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from srpipe.default_plugins.batch.chunks import PART_FORMAT, index_video, join_parts, plan_chunks
from srpipe.default_plugins.batch.engine import BatchSettings, Job, _makers, _split, run_batch, run_job
from srpipe.default_plugins.batch.progress import BatchProgress
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions, SourceOptions
from srpipe.nn.checkpoint import make_checkpoint, save_checkpoint
from srpipe.testing import damage_video, make_interlaced_clip, make_test_image, make_test_video, test_pattern
from srpipe.upscaling import upscale

from conftest import default_sigint, run_srpipe, wait_for
from media import packets, remux, video_info
from plugin_helpers import SLOW_PLUGIN, fake_plugin

GOP = {"preset": "fast", "g": "10", "bf": "3"}


def decoded(path):
    """Every decoded frame's pts and planes."""
    with av.open(str(path)) as container:
        return [(f.pts, [np.asarray(p).copy() for p in f.planes]) for f in container.decode(video=0)]


def declared_rate(path):
    """The frame rate a file's video track declares (Matroska: its frame duration)."""
    with av.open(str(path)) as container:
        return container.streams.video[0].average_rate


def assert_same_video(a, b):
    info_a, info_b = video_info(a), video_info(b)
    assert info_a["times"] == info_b["times"]
    assert declared_rate(a) == declared_rate(b)
    for key in ("types", "width", "height", "pix_fmt", "colour", "title", "rotation"):
        assert info_a[key] == info_b[key], key
    for kind in ("audio", "subtitle"):
        if kind in info_a["types"]:
            assert packets(a, kind) == packets(b, kind)


@pytest.fixture
def long_clips(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    make_test_video(root / "gop.mp4", frames=60, codec_options=GOP, rotation=90)
    make_test_video(root / "open.mkv", frames=50, subtitles=True,
                    codec_options={**GOP, "x264-params": "open-gop=1:keyint=12:min-keyint=12"})
    make_test_video(root / "short.mp4", frames=8)
    return root


def test_plan_cuts_at_keyframes_and_covers_every_frame(long_clips):
    index = index_video(long_clips / "gop.mp4")
    assert len(index.pts) == 60 and len(index.keyframes) >= 6
    chunks = plan_chunks(index, 0.5)
    assert len(chunks) == 4
    assert chunks[0].start is None and chunks[-1].end is None
    assert all(c.start in index.keyframes for c in chunks[1:])
    assert [c.end for c in chunks[:-1]] == [c.start for c in chunks[1:]]
    assert sum(c.frames for c in chunks) == 60
    assert len(plan_chunks(index, 10)) == 1  # shorter than two chunks
    assert index_video(long_clips / "gop.mp4", min_seconds=10) is None


def test_only_indexed_containers_are_split(tmp_path):
    make_test_video(tmp_path / "clip.ts", frames=30)
    assert index_video(tmp_path / "clip.ts") is None
    (tmp_path / "junk.mp4").write_text("not a video")
    assert index_video(tmp_path / "junk.mp4") is None


@pytest.mark.parametrize("name", ["gop.mp4", "open.mkv"])
def test_joined_parts_decode_to_the_parts_frames(long_clips, tmp_path, name):
    """Lossy x264 with B-frames, closed and open GOPs: the join changes no packet."""
    source = long_clips / name
    index = index_video(source)
    chunks = plan_chunks(index, 0.5)
    assert len(chunks) >= 3
    parts = []
    for chunk in chunks:
        part = tmp_path / f"part{chunk.index}.{PART_FORMAT}"
        result = upscale(str(source), str(part), sink_options=SinkOptions(container_format=PART_FORMAT),
                         source_options=SourceOptions(pts_range=(chunk.start, chunk.end)))
        assert result.stats.frames_out == chunk.frames
        parts.append(part)
    output = tmp_path / f"joined{source.suffix}"
    assert join_parts(source, index, parts, output) == len(index.pts)
    joined = decoded(output)
    from_parts = [planes for part in parts for _, planes in decoded(part)]
    assert len(joined) == len(from_parts) == len(index.pts)
    for (_, a), b in zip(joined, from_parts):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    whole = tmp_path / f"whole{source.suffix}"
    upscale(str(source), str(whole))
    assert_same_video(output, whole)


def test_a_joined_variable_rate_clip_shows_each_frame_as_long_as_a_whole_run_does(tmp_path):
    """The parts' format keeps no durations: the last frame took the mean rate's step, where the
    source (and a whole run) shows it as long as its packet says."""
    pts = [*range(0, 60, 2), *range(60, 120, 4), *range(120, 150)]  # 30, 15, then 60 frames a second
    (tmp_path / "in").mkdir()
    clip = make_test_video(tmp_path / "in" / "vfr.mp4", frames=len(pts), pts=pts, time_base=Fraction(1, 60),
                           audio=False, codec_options={**GOP, "bf": "0"})
    settings = BatchSettings(sink=SinkOptions(codec="ffv1"))
    (whole,) = run_batch(clip.parent, tmp_path / "whole", settings, chunk_seconds=0).files
    (joined,) = run_batch(clip.parent, tmp_path / "out", settings, jobs=2, chunk_seconds=0.5).files
    assert whole.status == joined.status == "done"

    def shown(path):  # (pts, duration) of every frame, in seconds
        with av.open(str(path)) as container:
            return sorted((float(p.pts * p.time_base), float(p.duration * p.time_base))
                          for p in container.demux(video=0) if p.size)

    assert shown(tmp_path / "out" / "vfr.mp4") == shown(tmp_path / "whole" / "vfr.mp4") == shown(clip)


def test_a_short_clip_with_primed_sound_is_joined_from_where_a_whole_run_starts_it(tmp_path):
    """Matroska whose video starts at 0 and its primed AAC sound plays from 80 ms, which FFmpeg
    gives as the start of the file and of its short H.264 stream (test_timestamps): the join took
    it off too, and the MP4's edit list hid the two frames it put before zero."""
    source = make_test_video(tmp_path / "primed.mkv", frames=6, pts=list(range(-2, 4)),
                             codec_options={"preset": "ultrafast", "g": "2"})
    index = index_video(source)
    chunks = plan_chunks(index, 0.05)
    assert len(chunks) >= 2
    parts = []
    for chunk in chunks:
        parts.append(tmp_path / f"part{chunk.index}.{PART_FORMAT}")
        upscale(str(source), str(parts[-1]), sink_options=SinkOptions(container_format=PART_FORMAT),
                source_options=SourceOptions(pts_range=(chunk.start, chunk.end)))
    assert join_parts(source, index, parts, tmp_path / "joined.mp4") == 6
    upscale(str(source), str(tmp_path / "whole.mp4"))
    times = video_info(source)["times"]
    assert video_info(tmp_path / "joined.mp4")["times"] == video_info(tmp_path / "whole.mp4")["times"] == times


def test_a_join_leaves_sound_cut_away_out_and_tells_what_its_output_cannot_hold(tmp_path):
    """As one process writes it (test_faults, test_video_pipeline): a Matroska or MPEG-TS output
    would play the sound an MP4 cut without encoding hides, and start its picture that much later."""
    plain = make_test_video(tmp_path / "plain.mp4", frames=50, codec_options={"preset": "ultrafast", "g": "10"})
    source = remux(plain, tmp_path / "cut.mp4", sound_before=1.0, chapters=[(0, 1, "One")],
                   flags=av.stream.Disposition.comment)
    index = index_video(source)
    parts = []
    for chunk in plan_chunks(index, 0.5):
        parts.append(tmp_path / f"part{chunk.index}.{PART_FORMAT}")
        upscale(str(source), str(parts[-1]), sink_options=SinkOptions(container_format=PART_FORMAT),
                source_options=SourceOptions(pts_range=(chunk.start, chunk.end)))
    assert len(parts) >= 2
    with pytest.warns(UserWarning) as caught:
        assert join_parts(source, index, parts, tmp_path / "joined.ts") == 50
    assert [str(warning.message).split(":")[0] for warning in caught] == [
        f"the chapter of {source} is not kept", f"the audio stream #1 of {source} loses its flags (comment)"]
    with av.open(str(tmp_path / "joined.ts")) as joined:
        assert joined.duration / av.time_base < 2.2  # the cut's 2 s, not 3


def test_a_video_joined_mid_way_before_a_keyframe_runs_whole_in_a_chunked_batch(tmp_path):
    """A recording cut from a broadcast: its packets before the first keyframe give no picture,
    which only a whole run counts (chunk 0 gave fewer frames than planned, or none)."""
    plain = make_test_video(tmp_path / "plain.mkv", frames=60, audio=False, codec_options=GOP)
    clip = tmp_path / "in" / "joined.mkv"
    clip.parent.mkdir()
    with av.open(str(plain)) as source, av.open(str(clip), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for number, packet in enumerate(p for p in source.demux(video=0) if p.dts is not None):
            if number >= 5:  # from a frame that is not a keyframe
                packet.stream = stream
                out.mux(packet)
    assert index_video(clip) is None
    (chunked,) = run_batch(clip.parent, tmp_path / "out", jobs=2, chunk_seconds=0.5).files
    (whole,) = run_batch(clip.parent, tmp_path / "whole", chunk_seconds=0).files
    assert chunked.status == whole.status == "done" and chunked.frames == whole.frames > 40


def test_join_refuses_missing_frames(long_clips, tmp_path):
    source = long_clips / "gop.mp4"
    index = index_video(source)
    first = plan_chunks(index, 0.5)[0]
    part = tmp_path / f"part.{PART_FORMAT}"
    upscale(str(source), str(part), sink_options=SinkOptions(container_format=PART_FORMAT),
            source_options=SourceOptions(pts_range=(first.start, first.end)))
    with pytest.raises(Exception, match=f"hold {first.frames} frames but the source has 60"):
        join_parts(source, index, [part], tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "part.nut"]


@pytest.mark.parametrize("codec_args", [["--codec", "ffv1"], ["--codec", "libx264", "--crf", "0"]])
def test_chunked_batch_equals_single_process_losslessly(long_clips, tmp_path, codec_args):
    one, split = tmp_path / "one", tmp_path / "split"
    done = run_srpipe("batch", long_clips, one, *codec_args, "-q")
    assert done.returncode == 0, done.stderr.decode()
    done = run_srpipe("batch", long_clips, split, *codec_args, "--jobs", "2", "--chunk-seconds", "0.5", "-q", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["frames"] == 118
    assert sorted(p.name for p in split.iterdir()) == [".srpipe-batch.json", "gop.mp4", "open.mkv", "short.mp4"]
    for name in ("gop.mp4", "open.mkv"):
        assert_same_video(split / name, one / name)
        for (pts_a, a), (pts_b, b) in zip(decoded(split / name), decoded(one / name), strict=True):
            assert pts_a == pts_b and all(np.array_equal(x, y) for x, y in zip(a, b))
    done = run_srpipe("batch", long_clips, split, *codec_args, "--jobs", "2", "--chunk-seconds", "0.5", "-q", "--json")
    assert json.loads(done.stdout)["skipped"] == 3  # the manifest is the same as unchunked runs'


def test_finished_parts_are_reused_and_stale_ones_removed(long_clips, tmp_path):
    out = tmp_path / "out"
    (out / ".srpipe-parts" / "0123456789abcdef").mkdir(parents=True)  # from other settings
    settings = BatchSettings(sink=SinkOptions(codec="ffv1"))
    frames = []
    # A first run that stops after one chunk: run the same planning, then only chunk 0.
    job = Job(Path("gop.mp4"), long_clips / "gop.mp4", out / "gop.mp4", "gop.mp4", settings)
    file = _split(job, out, 0.5, _makers(settings))
    first = file.chunk_jobs()[0]
    assert run_job(first).status == "done"
    report = run_batch(long_clips, out, settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4",
                       on_frame=lambda n=1: frames.append(n))
    assert report.to_dict()["done"] == 1 and report.frames == 60
    assert sum(frames) == 60 - first.chunk.frames  # chunk 0 was not redone
    assert sorted(p.name for p in out.iterdir()) == [".srpipe-batch.json", "gop.mp4"]
    whole = tmp_path / "whole.mp4"
    upscale(str(long_clips / "gop.mp4"), str(whole), sink_options=SinkOptions(codec="ffv1"))
    assert [pts for pts, _ in decoded(whole)] == [pts for pts, _ in decoded(out / "gop.mp4")]


@pytest.mark.parametrize("swapped", [(".nut",), (".nut", ".json")])
def test_parts_moved_to_each_others_names_are_made_again_not_joined_out_of_order(tmp_path, swapped):
    """A stopped run's parts, swapped (the parts alone, or with the notes beside them): the next
    run joined them as they were named, and played frames 10-19, then 0-9, then 20-39."""
    site = fake_plugin(tmp_path / "site", "slow_plugin", SLOW_PLUGIN)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_video(inputs / "clip.mkv", frames=40, audio=False, codec_options={**GOP, "bf": "0"})
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "--batch-size", "1",
               "--codec", "ffv1", "-q", "--json"]
    chunked = [*command, "--jobs", "2", "--chunk-seconds", "0.3"]
    process = subprocess.Popen(chunked, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=default_sigint)
    first_two = ["part-0000.nut", "part-0001.nut"]
    wait_for(lambda: all(any(out.glob(f".srpipe-parts/*/{name}")) for name in first_two), process, seconds=120)
    time.sleep(0.3)  # their notes written, which follow them at once
    process.send_signal(signal.SIGINT)  # the next two chunks have begun: 2 s each
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    (parts,) = (out / ".srpipe-parts").iterdir()
    for suffix in swapped:
        a, b = parts / f"part-0000{suffix}", parts / f"part-0001{suffix}"
        if not a.exists():  # srpipe before its parts had notes
            continue
        a.rename(parts / "swapping")
        b.rename(a)
        (parts / "swapping").rename(b)
    fast = {**env, "SRPIPE_TEST_SLOW_SECONDS": "0"}
    done = subprocess.run(chunked, env=fast, capture_output=True, timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout)["done"] == 1, done.stderr.decode()
    whole = subprocess.run([*command[:5], str(tmp_path / "whole"), *command[6:]], env=fast, capture_output=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr.decode()
    for (pts_a, a), (pts_b, b) in zip(decoded(out / "clip.mkv"), decoded(tmp_path / "whole" / "clip.mkv"), strict=True):
        assert pts_a == pts_b and all(np.array_equal(x, y) for x, y in zip(a, b)), pts_a

def test_a_parts_folder_that_is_a_link_or_a_file_is_refused_and_nothing_is_removed_through_it(tmp_path):
    """Stale parts are removed: through a link, that was every folder where it leads."""
    clips = tmp_path / "in"
    clips.mkdir()
    make_test_video(clips / "a.mp4", frames=3)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "project").mkdir(parents=True)
    (elsewhere / "project" / "notes.txt").write_text("kept")
    for name, make in (("linked", lambda p: p.symlink_to(elsewhere, target_is_directory=True)),
                       ("dangling", lambda p: p.symlink_to(tmp_path / "nothing")),
                       ("file", lambda p: p.write_text(""))):
        out = tmp_path / name
        out.mkdir()
        make(out / ".srpipe-parts")
        kind = "file" if name == "file" else "link"
        with pytest.raises(SrpipeError, match=f"^{out / '.srpipe-parts'} is a {kind}, where srpipe batch keeps the "
                                              "parts of files it upscales in chunks; move it away and run again$"):
            run_batch(clips, out, jobs=2, chunk_seconds=0.5)
    assert (elsewhere / "project" / "notes.txt").read_text() == "kept"
    # a link among the parts' folders is taken away, its target left as it was
    out = tmp_path / "out"
    (out / ".srpipe-parts").mkdir(parents=True)
    (out / ".srpipe-parts" / "0123456789abcdef").symlink_to(elsewhere, target_is_directory=True)
    assert run_batch(clips, out, jobs=2, chunk_seconds=0.5).to_dict()["done"] == 1
    assert (elsewhere / "project" / "notes.txt").read_text() == "kept" and not (out / ".srpipe-parts").exists()


def nearest_checkpoint(bias: float) -> dict:
    """A one-layer x2 ESPCN: each pixel copied to its 2x2 block, plus ``bias``."""
    net = ESPCN(ESPCNConfig(scale=2, features=(), kernels=(1,)))
    with torch.no_grad():
        net.last_layer.weight.fill_(1.0)
        net.last_layer.bias.fill_(bias)
    return make_checkpoint(net, {"note": "nearest"})


def test_parts_made_by_other_weights_are_made_again(long_clips, tmp_path):
    """A checkpoint retrained into the same file between two runs (or srpipe upgraded, and with it
    the weights -m espcn picks): the first run's parts are not joined with the second's."""
    weights, out = tmp_path / "mine.pt", tmp_path / "out"
    save_checkpoint(nearest_checkpoint(bias=0.0), weights)
    settings = BatchSettings(model="espcn", weights=str(weights), sink=SinkOptions(codec="ffv1"))
    job = Job(Path("gop.mp4"), long_clips / "gop.mp4", out / "gop.mp4", "gop.mp4", settings)
    assert run_job(_split(job, out, 0.5, _makers(settings)).chunk_jobs()[0]).status == "done"  # then it stops
    save_checkpoint(nearest_checkpoint(bias=0.1), weights)
    frames = []
    report = run_batch(long_clips, out, settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4",
                       on_frame=lambda n=1: frames.append(n))
    assert report.to_dict()["done"] == 1 and sum(frames) == 60  # every chunk made again
    whole = tmp_path / "whole.mkv"
    upscale(str(long_clips / "gop.mp4"), str(whole), model="espcn", weights=str(weights),
            sink_options=SinkOptions(codec="ffv1"))
    for (_, a), (_, b) in zip(decoded(whole), decoded(out / "gop.mp4"), strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_failed_chunk_fails_its_file_only(long_clips, tmp_path):
    (long_clips / "gop.mp4").unlink()
    clean = make_test_video(tmp_path / "clean.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=60, codec_options={})
    damage_video(clean, long_clips / "damaged.mkv", frames=(40, 41))  # in the third chunk
    done = run_srpipe("batch", long_clips, tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.5", "-q", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1
    status = {f["input"]: (f["status"], f["error"]) for f in report["files"]}
    assert {name: s for name, (s, _) in status.items()} == {"damaged.mkv": "failed", "open.mkv": "done",
                                                            "short.mp4": "done"}
    assert "damaged.mkv is damaged at 1.5" in status["damaged.mkv"][1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".srpipe-batch.json", ".srpipe-parts",
                                                                    "open.mkv", "short.mp4"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to trim an MP4 without encoding")
def test_an_mp4_trimmed_without_encoding_is_chunked_as_it_plays(tmp_path):
    """`ffmpeg -ss T -c copy` (and trimming tools) keep the frames from the keyframe before T and
    an edit list that hides them: the decoder drops them, and so must the chunks' count."""
    whole, trimmed = tmp_path / "whole.mp4", tmp_path / "in" / "trimmed.mp4"
    make_test_video(whole, frames=60, codec_options=GOP)
    trimmed.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.9", "-i", str(whole), "-c", "copy", str(trimmed)], check=True)
    shown = len(decoded(trimmed))
    with av.open(str(trimmed)) as container:  # the edit list hides frames the file holds
        assert any(packet.is_discard for packet in container.demux(video=0))
    assert len(index_video(trimmed).pts) == shown
    done = run_srpipe("batch", trimmed.parent, tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.5", "-q",
                      "--json", "--codec", "ffv1")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["frames"] == shown
    assert [pts for pts, _ in decoded(tmp_path / "out" / "trimmed.mp4")] == [pts for pts, _ in decoded(trimmed)]


def test_a_chunked_file_keeps_its_chapters_and_its_video_tracks_tags(tmp_path):
    plain, clip = tmp_path / "plain.mp4", tmp_path / "in" / "chapters.mp4"
    make_test_video(plain, frames=60, codec_options=GOP)
    clip.parent.mkdir()
    chapters = [{"id": i + 1, "start": 1000 * i, "end": 1000 * (i + 1), "time_base": Fraction(1, 1000),
                 "metadata": {"title": title}} for i, title in enumerate(("Start", "End"))]
    with av.open(str(plain)) as source, av.open(str(clip), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        streams[0].metadata.update({"language": "fra", "handler_name": "Camera 2"})
        out.set_chapters(chapters)
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    assert len(plan_chunks(index_video(clip), 0.5)) >= 2  # what the batch below splits it into
    done = run_srpipe("batch", clip.parent, tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.5", "-q", "--json")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / "out" / "chapters.mp4")) as out:
        assert [chapter["metadata"]["title"] for chapter in out.chapters()] == ["Start", "End"]
        video = out.streams.video[0]
        assert {"language": "fra", "handler_name": "Camera 2"}.items() <= dict(video.metadata).items()
        assert video.disposition & av.stream.Disposition.default


def test_a_chunked_file_that_changes_size_gives_what_one_process_gives(tmp_path):
    """Frames of another size than the first are brought to its size (as FFmpeg's command does); a
    chunk after the change took its own first frame's size, and the join put frames of two sizes
    in one stream, which decoders read with errors."""
    parts = [make_test_video(tmp_path / f"{i}.ts", width=w, height=h, frames=15, audio=False,
                             codec_options={"preset": "ultrafast", "g": "5"})
             for i, (w, h) in enumerate(((64, 48), (96, 64)))]
    (tmp_path / "in").mkdir()
    clip = tmp_path / "in" / "grows.mkv"  # its stream's header says the first size, its packets both
    with av.open(str(parts[0])) as first, av.open(str(clip), "w") as out:
        stream = out.add_stream_from_template(first.streams.video[0])
        shift = 0
        for part in parts:  # the second after the first, in time
            with av.open(str(part)) as source:
                packets_in = [packet for packet in source.demux(video=0) if packet.dts is not None]
                end = max(packet.pts for packet in packets_in) + packets_in[0].duration  # muxing rescales them
                for packet in packets_in:
                    packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, stream
                    out.mux(packet)
                shift += end
    assert len(plan_chunks(index_video(clip), 0.2)) >= 3
    done = run_srpipe("batch", clip.parent, tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.2", "-m", "bicubic",
                      "--codec", "ffv1", "-q", "--json")
    assert done.returncode == 0, done.stderr.decode()
    whole = upscale(str(clip), str(tmp_path / "whole.mkv"), model="bicubic",
                    sink_options=SinkOptions(codec="ffv1", crf=None))
    chunked = video_info(tmp_path / "out" / "grows.mkv")["luma"]
    assert len(chunked) == 30 and {luma.shape for luma in chunked} == {(96, 128)}
    assert all(np.array_equal(a, b) for a, b in zip(chunked, video_info(whole.output)["luma"], strict=True))


def test_a_chunked_interlaced_file_is_deinterlaced_as_one_process_does(tmp_path):
    (tmp_path / "in").mkdir()
    clip = make_interlaced_clip(tmp_path / "in" / "tv.mp4", [test_pattern(64, 48, i) for i in range(80)],
                                codec_options=GOP)
    starts = [chunk.start for chunk in plan_chunks(index_video(clip), 0.5)]
    assert len(starts) >= 3
    one, split = tmp_path / "one", tmp_path / "split"
    for out, args in ((one, ()), (split, ("--jobs", "2", "--chunk-seconds", "0.5"))):
        done = run_srpipe("batch", clip.parent, out, "--crf", "0", *args, "--json")
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout)["files"][0]["frames_deinterlaced"] == 40  # as upscale's --json counts them
    frames = list(zip(decoded(one / "tv.mp4"), decoded(split / "tv.mp4"), strict=True))
    assert len(frames) == 40
    for (pts, a), (pts_split, b) in frames:
        assert pts == pts_split
        # a part's first frame has no field before it (it lies in the part before): bwdif works
        # from the fields after it alone there; every other frame is the same
        if pts not in starts[1:]:
            assert all(np.array_equal(x, y) for x, y in zip(a, b)), pts
        else:
            assert 10 * np.log10(255 ** 2 / np.mean((a[0].astype(float) - b[0]) ** 2)) > 30


@pytest.mark.parametrize("chunked", [False, True])
def test_a_file_whose_times_start_late_starts_at_zero_chunked_or_not(tmp_path, chunked):
    """Outputs start at zero as FFmpeg's do (an MP4 would open with a blank as long as the delay),
    with the chapters moved alike: one that ends before the streams start left out, one that spans
    their start begun at zero (Matroska refuses a chapter that starts before zero)."""
    plain, clip = tmp_path / "plain.mp4", tmp_path / "in" / "late.mkv"
    make_test_video(plain, frames=60, codec_options=GOP)
    clip.parent.mkdir()
    spans = [(0, 1000, "Before"), (0, 5500, "Intro"), (5500, 8000, "Main")]  # ms; the streams start at 5 s
    chapters = [{"id": i + 1, "start": start, "end": end, "time_base": Fraction(1, 1000), "metadata": {"title": title}}
                for i, (start, end, title) in enumerate(spans)]
    with av.open(str(plain)) as source, av.open(str(clip), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        out.set_chapters(chapters)
        for packet in source.demux():
            if packet.dts is not None:
                step = round(5 / packet.time_base)
                packet.pts, packet.dts = packet.pts + step, packet.dts + step
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    assert len(plan_chunks(index_video(clip), 0.5)) >= 2  # what the chunked batch splits it into
    args = ["--jobs", "2", "--chunk-seconds", "0.5"] if chunked else ["--chunk-seconds", "0"]
    done = run_srpipe("batch", clip.parent, tmp_path / "out", *args, "-q")
    assert done.returncode == 0, done.stderr.decode()
    output = tmp_path / "out" / "late.mkv"
    times, before = video_info(output)["times"], video_info(clip)["times"]
    assert len(times) == 60 and times[0] < Fraction(1, 10)
    assert [t - times[0] for t in times] == [t - before[0] for t in before]
    with av.open(str(clip)) as source:
        origin = Fraction(source.start_time, av.time_base)  # the audio's, its priming before the video's 5 s
    with av.open(str(output)) as out:
        assert [(chapter["metadata"]["title"], chapter["start"] * chapter["time_base"])
                for chapter in out.chapters()] == [("Intro", 0), ("Main", Fraction(11, 2) - origin)]
    assert abs(packets(output, "audio")[0][0] - times[0]) < Fraction(1, 10)


def with_repeated_timestamps(clean: Path, path: Path, repeated: range) -> Path:
    """``clean`` remuxed with the frames of ``repeated`` given the timestamp of the frame before them,
    as a damaged or badly muxed file has them."""
    with av.open(str(clean)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for number, packet in enumerate(p for p in inp.demux(video=0) if p.size):
            if number == repeated.start - 1:
                kept = packet.pts
            if number in repeated:
                packet.pts = packet.dts = kept
            packet.stream = stream
            out.mux(packet)
    return path


def test_a_file_with_repeated_timestamps_is_not_split_and_comes_out_as_one_process_makes_it(long_clips, tmp_path):
    """A whole file's run times repeated timestamps by the frame rate; a chunk starting mid-way
    cannot, so such a file is upscaled whole, and the batch's other files are chunked as before."""
    clean = make_test_video(tmp_path / "clean.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=60, audio=False,
                            codec_options={})
    repeated = with_repeated_timestamps(clean, long_clips / "repeated.mkv", range(40, 43))
    assert index_video(repeated) is None
    done = run_srpipe("batch", long_clips, tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.5", "-q", "--json",
                      "--codec", "ffv1")
    assert done.returncode == 0, done.stderr.decode()
    assert {f["input"]: (f["status"], f["frames"]) for f in json.loads(done.stdout)["files"]} == {
        "gop.mp4": ("done", 60), "open.mkv": ("done", 50), "short.mp4": ("done", 8), "repeated.mkv": ("done", 60)}
    one = tmp_path / "one.mkv"
    with pytest.warns(UserWarning, match="had no timestamp, or one not after"):
        upscale(str(repeated), str(one), sink_options=SinkOptions(codec="ffv1"))
    assert video_info(tmp_path / "out" / "repeated.mkv")["times"] == video_info(one)["times"]


def test_a_file_whose_parts_cannot_be_joined_fails_alone(long_clips, tmp_path, monkeypatch):
    """An unexpected error while joining one file's parts (a muxer's refusal, say) fails that file,
    and the batch finishes the others."""
    from srpipe.default_plugins.batch import chunks

    join = chunks.join_parts

    def refusing(source, *args, **kwargs):
        if Path(source).name == "gop.mp4":
            raise av.error.ArgumentError(22, "Invalid argument")
        return join(source, *args, **kwargs)

    monkeypatch.setattr(chunks, "join_parts", refusing)
    report = run_batch(long_clips, tmp_path / "out", BatchSettings(sink=SinkOptions(codec="ffv1")), jobs=2,
                       chunk_seconds=0.5)
    status = {f.input: (f.status, f.error) for f in report.files}
    assert status["gop.mp4"][0] == "failed" and "Invalid argument" in status["gop.mp4"][1]
    assert {name: s for name, (s, _) in status.items() if name != "gop.mp4"} == {"open.mkv": "done",
                                                                                 "short.mp4": "done"}
    assert (tmp_path / "out" / "open.mkv").is_file() and not (tmp_path / "out" / "gop.mp4").exists()


def test_a_join_that_fills_the_disk_keeps_the_parts_for_the_next_run(long_clips, tmp_path, monkeypatch):
    """A chunked file takes room for its parts and its output: where the output does not fit, the
    parts are kept, and once space is freed the next run joins them, upscaling nothing again."""
    import errno

    from srpipe.default_plugins.batch import chunks

    join = chunks.join_parts

    def disk_full(*args, **kwargs):
        raise av.error.OSError(errno.ENOSPC, "No space left on device")

    settings = BatchSettings(sink=SinkOptions(codec="ffv1"))
    monkeypatch.setattr(chunks, "join_parts", disk_full)
    (failed,) = run_batch(long_clips, tmp_path / "out", settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4").files
    assert failed.error == ("cannot write gop.mp4: No space left on device; its parts are kept, and the next run only "
                            "joins them: free as much space as they take and run again")
    monkeypatch.setattr(chunks, "join_parts", join)
    frames = []
    (done,) = run_batch(long_clips, tmp_path / "out", settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4",
                        on_frame=lambda n=1: frames.append(n)).files
    assert done.status == "done" and done.frames == 60 and frames == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".srpipe-batch.json", "gop.mp4"]


def test_parts_an_earlier_run_made_are_joined_naming_what_ran_them(long_clips, tmp_path, monkeypatch):
    """Every part done when Ctrl-C stopped the batch before the join: the next run only joins
    them, and said that the batch's model ran with no variant, where a variant had run them."""
    from srpipe.default_plugins.batch import engine

    join = engine._join

    def interrupted(file):
        raise KeyboardInterrupt

    settings = BatchSettings(model="espcn", sink=SinkOptions(codec="ffv1"))
    monkeypatch.setattr(engine, "_join", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_batch(long_clips, tmp_path / "out", settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4")
    monkeypatch.setattr(engine, "_join", join)
    frames = []
    again = run_batch(long_clips, tmp_path / "out", settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4",
                      on_frame=lambda n=1: frames.append(n))
    done = again.files[0]
    assert done.status == "done" and sum(frames) == 0  # nothing upscaled again
    fresh = run_batch(long_clips, tmp_path / "fresh", settings, jobs=2, chunk_seconds=0.5, pattern="gop.mp4").files[0]
    assert (done.model, done.variant) == (fresh.model, fresh.variant) != (None, None)



def test_a_file_whose_chunk_skipped_damaged_frames_is_upscaled_again_whole(tmp_path):
    """The join puts each part's frames at the source's times by count: a chunk that skipped one
    failed its file as 'chunk 0 gave 14 frames instead of 15', which did not say why."""
    (tmp_path / "in").mkdir()
    clean = make_test_video(tmp_path / "clean.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=60, codec_options={})
    clip = damage_video(clean, tmp_path / "in" / "damaged.mkv", frames=(5,))
    make_test_video(tmp_path / "in" / "other.mkv", frames=60, codec_options=GOP)  # chunked, and joined
    settings = BatchSettings(model="bicubic", sink=SinkOptions(codec="ffv1"), on_decode_error="skip")
    progress = BatchProgress(stream=io.StringIO(), terminal=False)
    with pytest.warns(UserWarning, match=re.escape(
            f"the chunk 0 of {clip} did not give the frames it holds (damaged frames skipped, or packets that gave no "
            "picture), and a file upscaled in chunks keeps each frame in its place: it is upscaled again whole")):
        report = run_batch(tmp_path / "in", tmp_path / "out", settings, jobs=2, chunk_seconds=0.5,
                           on_file=progress.on_file, on_frame=progress.on_frame, on_plan=progress.on_plan)
    done = {file.input: (file.status, file.frames, file.frames_skipped) for file in report.files}
    assert done == {"damaged.mkv": ("done", 59, 1), "other.mkv": ("done", 60, 0)}
    assert progress.total == progress.frames > 59 + 60  # its chunks' frames and its own: the bar ends full
    (whole,) = run_batch(tmp_path / "in", tmp_path / "whole", settings, pattern="damaged.mkv", chunk_seconds=0).files
    assert decoded(tmp_path / "out" / "damaged.mkv")[-1][0] == decoded(tmp_path / "whole" / "damaged.mkv")[-1][0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".srpipe-batch.json", "damaged.mkv", "other.mkv"]


def test_frames_the_decoder_mended_are_counted_over_the_chunks_and_kept_for_a_resumed_join(tmp_path, monkeypatch):
    """--json gives a chunked file's mended frames as a whole file's (a chunk's decoder also reads
    the first frames of the next, which are that one's to count), and so does a later run that
    only joins the parts an earlier one made."""
    from srpipe.default_plugins.batch import engine

    (tmp_path / "in").mkdir()
    clean = make_test_video(tmp_path / "clean.mp4", frames=60, audio=False, codec_options={**GOP, "bf": "0"})
    chunks = plan_chunks(index_video(clean), 0.5)
    assert len(chunks) >= 3
    # a frame inside the first chunk, and the keyframe the second begins with (packets count from 1)
    damage_video(clean, tmp_path / "in" / "damaged.mp4", frames=(4, chunks[0].frames + 1))
    settings = BatchSettings(model="bicubic", sink=SinkOptions(codec="ffv1"))
    (whole,) = run_batch(tmp_path / "in", tmp_path / "whole", settings, chunk_seconds=0).files
    assert whole.status == "done" and whole.frames_concealed >= 2
    join = engine._join

    def interrupted(file):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_join", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_batch(tmp_path / "in", tmp_path / "out", settings, jobs=2, chunk_seconds=0.5)
    monkeypatch.setattr(engine, "_join", join)
    (joined,) = run_batch(tmp_path / "in", tmp_path / "out", settings, jobs=2, chunk_seconds=0.5).files
    assert (joined.status, joined.frames_concealed) == ("done", whole.frames_concealed)
    fresh = run_batch(tmp_path / "in", tmp_path / "fresh", settings, jobs=2, chunk_seconds=0.5)
    assert fresh.to_dict()["files"][0]["frames_concealed"] == whole.frames_concealed


def test_a_chunked_matroska_declares_the_frame_rate_a_whole_run_declares(tmp_path):
    """Matroska writes a track's declared rate as its frame duration: the join declared the parts'
    codec's (x264's timing, 1000 fps in a source timed in ms), and a remux of the file to MP4 was
    timed by it (2.935 s at 18000/587 fps, where the source is 3 s at 30)."""
    (tmp_path / "in").mkdir()
    make_test_video(tmp_path / "in" / "a.mkv", frames=90, rate=30, codec_options={**GOP, "g": "15"})
    for out, args in (("whole", []), ("chunked", ["--jobs", "2", "--chunk-seconds", "0.5"])):
        done = run_srpipe("batch", tmp_path / "in", tmp_path / out, "-q", *args)
        assert done.returncode == 0, done.stderr.decode()
    assert len(plan_chunks(index_video(tmp_path / "in" / "a.mkv"), 0.5)) >= 2
    assert declared_rate(tmp_path / "chunked" / "a.mkv") == declared_rate(tmp_path / "whole" / "a.mkv") == 30

def test_a_chunked_matroska_keeps_its_cover_picture(tmp_path):
    """Matroska takes a cover as an attachment, before the file begins: the join reads its bytes."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=60, codec_options=GOP)
    cover = make_test_image(tmp_path / "cover.jpg").read_bytes()
    (tmp_path / "in").mkdir()
    with av.open(str(clip)) as source, av.open(str(tmp_path / "in" / "covered.mkv"), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        out.add_attachment("cover.jpg", "image/jpeg", cover)
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    done = run_srpipe("batch", tmp_path / "in", tmp_path / "out", "--jobs", "2", "--chunk-seconds", "0.5", "-q")
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()
    assert len(plan_chunks(index_video(tmp_path / "in" / "covered.mkv"), 0.5)) >= 2
    with av.open(str(tmp_path / "out" / "covered.mkv")) as container:
        (kept,) = [s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        assert [bytes(packet) for packet in container.demux(kept) if packet.size] == [cover]
