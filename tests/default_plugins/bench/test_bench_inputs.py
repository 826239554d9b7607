"""srpipe bench on the clips users have: variable frame rates, sound and subtitles an MP4 cannot
hold, odd names, damaged or hostile files, long clips (figures are not asserted: timing tests flake)."""

import json
import re
import shutil
import subprocess
import sys

import pytest

from srpipe.errors import SrpipeError
from srpipe.testing import damage_video, make_huge_claim_h264, make_test_video

from conftest import run_srpipe

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no system ffmpeg")
QUICK = ("-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--no-startup")


def ffmpeg_row(report: dict) -> dict:
    return next(row for row in report["results"] if row["stage"] == "ffmpeg end-to-end")


@needs_ffmpeg
def test_ffmpegs_run_keeps_each_frame_and_its_time(tmp_path):
    """ffmpeg made a variable-frame-rate clip constant-rate (16 frames more here), and its rate was
    counted on srpipe's frames, not on those it wrote."""
    clip = make_test_video(tmp_path / "vfr.mp4", frames=6, pts=[0, 1, 2, 3, 20, 21], audio=False)
    done = run_srpipe("bench", clip, *QUICK, "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert ffmpeg_row(json.loads(done.stdout))["frames"] == 6


@needs_ffmpeg
def test_sound_and_subtitles_an_mp4_cannot_hold_are_written_to_mkv_by_both(tmp_path):
    """ASS subtitles stopped the encode stage; PCM sound, which FFmpeg 5.1's MP4 writer refuses,
    stopped ffmpeg's run."""
    ass = make_test_video(tmp_path / "ass.mkv", frames=4, subtitles=True)
    pcm = tmp_path / "pcm.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi",
                    "-i", "sine=d=0.4", "-t", "0.4", "-c:v", "libx264", "-c:a", "pcm_s16le", str(pcm)], check=True)
    for clip in (ass, pcm):
        done = run_srpipe("bench", clip, *QUICK, "--json")
        assert done.returncode == 0, done.stderr.decode()
        assert ffmpeg_row(json.loads(done.stdout))["frames"] == 4


def test_a_failed_command_gives_its_reason_not_its_last_line(tmp_path):
    from srpipe.default_plugins.bench.bench import run_whole_process

    said = ("[mp4 @ 0x5645392c7140] flac in MP4 support is experimental\n"
            "Could not write header for output file #0 (incorrect codec parameters ?): Experimental feature\n"
            "Error initializing output stream 0:0 -- \n")
    failed = run_whole_process([sys.executable, "-c", f"import sys; sys.stderr.write({said!r}); sys.exit(1)"],
                               tmp_path)
    with pytest.raises(SrpipeError, match=r"exited with 1, not 0: mp4: flac in MP4 support is experimental$"):
        failed.check()


def test_a_clip_named_like_an_option_is_read_as_a_file(tmp_path):
    make_test_video(tmp_path / "-clip.mp4", frames=3)
    done = run_srpipe("bench", *QUICK, "--json", "--", "-clip.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert {row["stage"] for row in json.loads(done.stdout)["results"]} >= {"end-to-end"}


def test_frames_over_the_limit_are_refused_as_upscale_refuses_them(tmp_path):
    huge = make_huge_claim_h264(tmp_path / "huge.h264")  # a few KB claiming 16000x16000
    done = run_srpipe("bench", huge, *QUICK)
    assert done.returncode == 1 and done.stderr.decode() == (
        f"Error: {huge} has 16000x16000 frames (256.0 megapixels), over the limit of 40.0 megapixels; if the file "
        "is genuine and memory allows, pass --max-pixels 256000000\n")
    small = make_test_video(tmp_path / "clip.mp4", frames=3)
    done = run_srpipe("bench", small, *QUICK, "--max-pixels", "1000")
    assert done.returncode == 1 and "has 64x48 frames" in done.stderr.decode()


def test_a_clip_with_no_frame_that_decodes_is_one_error_before_any_row(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=5, audio=False)
    damaged = damage_video(clip, tmp_path / "damaged.mp4", frames=tuple(range(5)))
    stopped = run_srpipe("bench", damaged, *QUICK)  # the option it advises is bench's too
    assert stopped.returncode == 1 and "rerun with --on-decode-error skip" in stopped.stderr.decode()
    done = run_srpipe("bench", damaged, *QUICK, "--on-decode-error", "skip")
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and lines[-1] == f"Error: {damaged} has no frame that decodes; check the file"
    assert all(line.startswith("Warning:") for line in lines[:-1]), lines


def test_stage_rows_hold_only_what_fits_in_memory(tmp_path, cli_run, monkeypatch):
    """Every frame of the clip, decoded and upscaled, was held in memory: a long clip ran out of it."""
    from srpipe.default_plugins.bench import bench

    monkeypatch.setattr(bench, "STAGE_MEMORY", 3 * 64 * 48 * 3 // 2 * 5)  # 3 frames of 64x48 4:2:0 and their x2
    clip = make_test_video(tmp_path / "clip.mp4", frames=8)
    done = cli_run("bench", clip, *QUICK)
    assert done.exit_code == 0, done.stderr
    assert re.search(r"^stages: the first 3 frames .*; whole processes: all$", done.stderr, re.M), done.stderr
    report = json.loads(cli_run("bench", clip, *QUICK, "--json").stdout)
    assert (report["stage_frames"], report["stage_frames_whole"]) == (3, False)
    assert [row["frames"] for row in report["results"] if row["stage"] in ("decode", "upscale")] == [3, 3]
