"""srpipe bench reports every stage (figures are not asserted: timing tests flake)."""

import json
import os
import shutil
import sys

import pytest

from srpipe.errors import SrpipeError
from srpipe.testing import make_test_video

from conftest import run_srpipe


def test_bench_reports_every_stage(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=6)  # start-up rows: test_bench_times_whole_commands_...
    done = run_srpipe("bench", clip, "-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--no-startup", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    stages = [(r["stage"], r["model"]) for r in report["results"]]
    assert stages[:4] == [("decode", None), ("upscale", "bicubic"), ("encode", None), ("end-to-end", "bicubic")]
    assert all(r["fps_median"] > 0 for r in report["results"])
    assert report["results"][0]["frames"] == 6 and report["results"][3]["peak_rss_mib"] > 0
    assert report["size"] == "64x48" and report["scale"] == 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no system ffmpeg")
def test_bench_compares_each_classical_method_with_ffmpegs_own(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=4)
    done = run_srpipe("bench", clip, "-m", "bicubic", "-m", "lanczos", "--batch-size", "2", "--repeats", "1",
                      "--no-startup", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert [r["model"] for r in report["results"] if r["stage"] == "ffmpeg end-to-end"] == ["bicubic", "lanczos"]
    assert {"bicubic vs ffmpeg", "lanczos vs ffmpeg"} <= set(report["ratios"])


def test_whole_process_runs_give_the_childs_own_time_memory_and_exit_code(tmp_path):
    from srpipe.default_plugins.bench.bench import run_whole_process

    big = run_whole_process([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"],
                            tmp_path)
    small = run_whole_process([sys.executable, "-c", "print('hi'); raise SystemExit('Error: no')"], tmp_path)
    assert big.code == 0 and big.peak_mib >= 300 and big.seconds > 0
    assert small.code == 1 and small.stdout == "hi\n" and small.peak_mib < 100  # not this process's memory
    assert small.check(1) is small
    with pytest.raises(SrpipeError, match="exited with 1, not 0: Error: no"):
        small.check()


def test_bench_times_whole_commands_against_a_bare_interpreter(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    done = run_srpipe("bench", clip, "-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr.decode()
    rows = {row["command"]: row for row in json.loads(done.stdout)["startup"]}
    assert rows["python -c 'import av, numpy'"]["vs_floor"] == 1.0
    assert {"srpipe --help", "srpipe models list", "missing input", "output exists",
            "upscale -m bicubic (3 frames, 64x64)"} <= set(rows)
    assert all(row["seconds_median"] > 0 and row["peak_rss_mib"] > 0 for row in rows.values())
    assert ("ffmpeg -vf scale bicubic (3 frames, 64x64)" in rows) == (shutil.which("ffmpeg") is not None)


def test_bench_is_quiet_with_q_and_passes_weights_on(tmp_path, cli_run):
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    done = run_srpipe("bench", clip, "-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--no-startup", "-q")
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b"", done.stderr.decode()
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    refused = run_srpipe("bench", clip, "-m", "bicubic", "--weights", weights)
    assert refused.returncode == 1 and b"none of the models takes --weights" in refused.stderr
    from srpipe.default_plugins.espcn.shipped import shipped_weights

    done = cli_run("bench", clip, "-m", "espcn-clean", "--weights", shipped_weights(3), "-s", "3",
                   "--batch-size", "2", "--repeats", "1", "--no-startup", "--json")  # in this process: torch loaded
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["scale"] == 3 and {r["stage"] for r in report["results"]} >= {"upscale", "end-to-end"}


def test_an_ffmpeg_without_libx264_is_left_out(tmp_path):
    """A system ffmpeg that cannot encode H.264 (Fedora's ffmpeg-free) gets no rows, not a failure."""
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho ' V....D libopenh264           OpenH264 H.264'\n")
    fake.chmod(0o755)
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    path = f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    done = run_srpipe("bench", clip, "-m", "bicubic", "--batch-size", "2", "--repeats", "1", "--json",
                      env={"PATH": path})
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert not any("ffmpeg" in row["stage"] for row in report["results"])
    assert not any("ffmpeg" in row["command"] for row in report["startup"])


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    """bench reads its clip several times: the second read of a FIFO waited for ever."""
    fifo = tmp_path / "clip.ts"
    os.mkfifo(fifo)
    done = run_srpipe("bench", fifo, "--repeats", "1", "--no-startup")
    assert done.returncode == 1 and done.stderr.decode() == (
        f"Error: {fifo} is a FIFO, not a file; srpipe bench reads its clip several times: give a file\n")


def test_a_clip_that_changes_size_is_timed_at_its_first_size(tmp_path):
    """Recordings of two sizes joined end to end: numpy's 'all input arrays must have the same shape',
    then a refusal; the reader brings every frame to the first's size, as upscale runs them."""
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(make_test_video(tmp_path / f"{w}.ts", width=w, height=h, frames=5, audio=False)
                                .read_bytes() for w, h in ((64, 48), (96, 64))))
    done = run_srpipe("bench", joined, "--repeats", "1", "--no-startup", "-m", "bicubic", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert f"Warning: {joined} changes from 64x48 yuv420p to 96x64 yuv420p" in done.stderr.decode()
