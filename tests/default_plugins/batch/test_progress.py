"""What srpipe batch shows: a bar by frames on a terminal, log lines elsewhere, failures under -q."""

import re
import types

from srpipe.default_plugins.batch.progress import BatchProgress, estimate_frames, format_seconds
from srpipe.testing import make_test_image, make_test_video

from conftest import run_in_terminal, run_srpipe


def make_inputs(root):
    (root / "sub").mkdir(parents=True)
    make_test_video(root / "a.mp4", frames=6)
    make_test_video(root / "sub" / "b.mkv", frames=4)
    make_test_image(root / "sub" / "c.png")
    (root / "broken.mp4").write_text("not a video")
    return root


def test_on_a_terminal_one_bar_by_frames_with_time_left_and_the_current_file(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    code, stdout, screen = run_in_terminal("batch", inputs, tmp_path / "out")
    assert code == 1 and stdout == b""  # one file failed
    assert re.search(r"batch: 100%\|[^|]*\| 11/11 frames \[\d\d:\d\d<\d\d:\d\d", screen), screen  # 6 + 4 + 1
    for number, name in enumerate(["a.mp4", "broken.mp4", "sub/b.mkv", "sub/c.png"], 1):
        assert f"file {number}/4 {name}" in screen
    assert "done     a.mp4 -> a.mp4 (6 frames" in screen and "FAILED   broken.mp4: cannot read" in screen
    assert "3 done, 0 skipped, 1 failed; 11 frames" in screen


def test_elsewhere_one_log_line_per_file_with_the_batch_progress(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    done = run_srpipe("batch", inputs, tmp_path / "out")
    lines = done.stderr.decode().splitlines()
    assert "\r" not in done.stderr.decode() and "|" not in done.stderr.decode()  # no bar
    assert lines[0].startswith("[1/4] done     a.mp4 -> a.mp4 (6 frames, ")
    assert "; batch 6/11 frames (55%), " in lines[0] and " fps, ETA " in lines[0]
    assert lines[1].startswith("[2/4] FAILED   broken.mp4: cannot read")
    assert lines[3].startswith("[4/4] done     sub/c.png -> sub/c.png (1 frame, ")
    assert "batch 11/11 frames (100%)" in lines[3] and lines[3].endswith("ETA 0:00")
    assert lines[4].startswith("3 done, 0 skipped, 1 failed; 11 frames") and len(lines) == 5
    again = run_srpipe("batch", inputs, tmp_path / "out").stderr.decode().splitlines()
    assert again[0] == "skipped  a.mp4 (already done)"  # known before the batch starts: no progress


def test_quiet_lists_failures_one_line_each_and_nothing_else(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    (inputs / "sub" / "also-broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 truncated")
    for run in (lambda *a: run_srpipe(*a).stderr.decode(), lambda *a: run_in_terminal(*a)[2].replace("\r\n", "\n")):
        stderr = run("batch", inputs, tmp_path / "out", "-q")
        lines = stderr.splitlines()
        assert [line.split(":")[0] for line in lines] == ["FAILED   broken.mp4", "FAILED   sub/also-broken.mkv"], stderr


def test_frames_are_counted_from_the_headers(tmp_path):
    assert estimate_frames(make_test_video(tmp_path / "a.mp4", frames=7)) == 7
    assert estimate_frames(make_test_video(tmp_path / "b.mkv", frames=5)) == 5  # by duration x rate
    assert estimate_frames(make_test_image(tmp_path / "c.png")) == 1
    (tmp_path / "d.mp4").write_text("junk")
    assert estimate_frames(tmp_path / "d.mp4") == 0
    assert [format_seconds(s) for s in (None, 5, 65, 3725)] == ["?", "0:05", "1:05", "1:02:05"]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def job(rel, frames=None, chunk=None):
    """A whole file's job (``frames``: what its header says), or a chunk's of ``chunk`` frames."""
    return types.SimpleNamespace(rel=rel, chunk=types.SimpleNamespace(frames=chunk) if chunk else None,
                                 source=frames)


def result(rel, status, frames=0, error=None):
    return types.SimpleNamespace(input=rel, status=status, frames=frames, seconds=1.0, output=rel, error=error,
                                 model=None, variant=None, frames_deinterlaced=0)


def test_the_total_follows_what_files_really_had_and_long_files_show_signs_of_life(capsys, monkeypatch):
    import sys

    monkeypatch.setattr("srpipe.default_plugins.batch.progress.estimate_frames", lambda header: header)
    clock = Clock()
    progress = BatchProgress(stream=sys.stdout, terminal=False, clock=clock)
    progress.on_plan([job("a.mp4", 100), job("b.mp4", 50), job("c.mp4", 50)])
    assert (progress.files, progress.total) == (3, 200)
    progress.on_start(job("a.mp4", 100))
    for _ in range(90):
        clock.now += 1
        progress.on_frame()
    progress.on_file(result("a.mp4", "done", 90))  # its header said 100
    progress.on_start(job("b.mp4", 50))
    for _ in range(10):
        clock.now += 1
        progress.on_frame()
    progress.on_file(result("b.mp4", "failed", error="damaged"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/3] working (a.mp4); batch 60/200 frames (30%), 1:00 elapsed, 1.0 fps, ETA 2:20"
    assert lines[1].startswith("[1/3] done     a.mp4 -> a.mp4 (90 frames, 1.0 s); batch 90/190 frames (47%)")
    assert lines[2] == "[2/3] FAILED   b.mp4: damaged; batch 100/150 frames (67%), 1:40 elapsed, 1.0 fps, ETA 0:50"
    assert progress.total == 150  # a's 90, b's 10 written before it failed, c's 50


def test_a_resumed_chunked_file_ends_the_bar_full(capsys):
    """Chunks an interrupted run made are not run again: the file's 300 frames replaced the 210 this
    run had to do, and the bar ended at 210/300 (70%)."""
    import sys

    clock = Clock()
    progress = BatchProgress(stream=sys.stdout, terminal=False, clock=clock)
    progress.on_plan([job("a.mp4", chunk=100), job("a.mp4", chunk=110)])  # its first 90 frames were done
    progress.on_start(job("a.mp4", chunk=100))
    clock.now += 10
    progress.on_frame(210)
    progress.on_file(result("a.mp4", "done", 300))
    assert "batch 210/210 frames (100%)" in capsys.readouterr().out.splitlines()[-1]


def test_a_terminal_that_reports_no_width_gets_a_bar_80_columns_wide(tmp_path):
    """'script' runs srpipe on a terminal of 0 columns: tqdm fitted the bar to it, and drew nothing."""
    inputs = make_inputs(tmp_path / "in")
    code, stdout, screen = run_in_terminal("batch", inputs, tmp_path / "out", columns=0)
    assert code == 1 and stdout == b""  # one file failed
    bars = re.findall(r"(batch: 100%\|([^|]*)\| 11/11 frames \[[^\r\n]*?sub/c.png)", screen)
    line, body = bars[-1]
    assert len(line) == 80 and len(body.strip()) >= 5, screen  # 80 wide, not one character of a bar
    assert "file 4/4 sub/c.png" in screen
