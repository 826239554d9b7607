"""srpipe batch never replaces an input, nor a file it did not write unless told to (-y),
and shows each file on one line whatever its name."""

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import cv2
import pytest

from srpipe.default_plugins.batch.progress import BatchProgress, shown
from srpipe.testing import make_test_image, make_test_video

from conftest import file_size_limit, run_srpipe


def batch(*args):
    done = run_srpipe("batch", *args, "--json")
    return done, json.loads(done.stdout) if done.stdout else None


def statuses(report):
    return {f["input"]: (f["status"], f["error"]) for f in report["files"]}


def test_a_file_the_batch_did_not_write_is_left_alone_unless_y(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "photo.jpg")
    make_test_video(inputs / "a.mp4", frames=3, audio=False)
    out.mkdir()
    (out / "photo.png").write_bytes(b"the user's own photo")

    done, report = batch(inputs, out)
    assert done.returncode == 1, done.stderr.decode()  # not everything was upscaled
    assert (out / "photo.png").read_bytes() == b"the user's own photo"
    status, error = statuses(report)["photo.jpg"]
    assert status == "exists" and "this batch did not write it" in error and "-y" in error
    assert (report["done"], report["exists"], report["failed"]) == (1, 1, 0)
    stderr = done.stderr.decode()
    assert "exists   photo.jpg: photo.png exists and this batch did not write it; left alone (-y replaces it)" \
        in stderr
    assert "1 done, 0 skipped, 1 left alone (output exists), 0 failed" in stderr

    done, report = batch(inputs, out, "-y")
    assert done.returncode == 0, done.stderr.decode()
    assert statuses(report) == {"a.mp4": ("skipped", None), "photo.jpg": ("done", None)}
    assert cv2.imread(str(out / "photo.png")).shape == (60, 80, 3)  # replaced by its upscale

    os.utime(inputs / "photo.jpg", ns=(1, 1))  # changed: the batch's own output is redone without -y
    done, report = batch(inputs, out)
    assert statuses(report)["photo.jpg"] == ("done", None)


def test_quiet_still_lists_a_file_left_alone_and_exits_1(tmp_path):
    """-q is for scripts: a file left alone was not upscaled, so it is said, and the status says so."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    make_test_image(inputs / "b.jpg")
    (out / "a.png").write_bytes(b"mine")
    done = run_srpipe("batch", inputs, out, "-q")
    assert done.returncode == 1
    assert done.stderr.decode() == \
        "exists   a.jpg: a.png exists and this batch did not write it; left alone (-y replaces it)\n"
    assert (out / "a.png").read_bytes() == b"mine" and (out / "b.png").is_file()
    assert run_srpipe("batch", inputs, out, "-q", "-y").returncode == 0


def test_an_out_dir_holding_in_dir_is_refused(tmp_path):
    """OUT_DIR above IN_DIR: p/a/a/x.png's output would be p/a/x.png, an input, and every output
    would be an input of the next run."""
    p = tmp_path / "p"
    (p / "a" / "a").mkdir(parents=True)
    make_test_image(p / "a" / "x.png", width=40)
    make_test_image(p / "a" / "a" / "x.png", width=20)
    before = {path: path.read_bytes() for path in p.rglob("*") if path.is_file()}

    done, _ = batch(p / "a", p, "-y")
    assert done.returncode == 1
    assert "is inside the output folder" in done.stderr.decode()
    assert {path: path.read_bytes() for path in p.rglob("*") if path.is_file()} == before


def unwritable(folder):
    """Make ``folder`` refuse new files even to root (immutable), or by its mode; the undo, or
    None where neither works here."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return lambda: folder.chmod(0o700)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        return None  # no chattr, or a file system without the flag (tmpfs)
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_output_folder_that_takes_no_files_is_refused_before_any_work(tmp_path):
    (tmp_path / "in").mkdir()
    make_test_image(tmp_path / "in" / "x.png", width=40)
    (tmp_path / "out").mkdir()
    undo = unwritable(tmp_path / "out")
    if undo is None:
        pytest.skip("no way here to make a folder that root cannot write into (chattr, or a file system with +i)")
    try:
        for out in (tmp_path / "out", tmp_path / "out" / "sub"):
            done, _ = batch(tmp_path / "in", out)
            assert done.returncode == 1
            assert done.stderr.decode().splitlines() == [
                f"Error: cannot write into the output folder {out}: "
                f"{'Operation not permitted' if os.geteuid() == 0 else 'Permission denied'}; choose another OUT_DIR"]
    finally:
        undo()
    assert not list((tmp_path / "out").iterdir())


def test_an_input_is_never_replaced_through_a_hard_link(tmp_path):
    """An output that is an input by another name: not even -y replaces it."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "x.png", width=40)
    make_test_image(inputs / "y.png", width=24)
    os.link(inputs / "y.png", out / "x.png")  # x.png's output is y.png
    before = (inputs / "y.png").read_bytes()

    for extra in ([], ["-y"]):
        done, report = batch(inputs, out, *extra)
        assert done.returncode == 1, done.stderr.decode()
        assert (inputs / "y.png").read_bytes() == before
        found = statuses(report)
        assert found["x.png"][0] == "failed" and "is the input y.png itself" in found["x.png"][1]
        assert found["y.png"][0] in ("done", "skipped") and cv2.imread(str(out / "y.png")).shape[1] == 48


def test_an_output_link_leading_to_an_input_or_out_of_out_dir_is_not_followed(tmp_path):
    inputs, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    for folder in (inputs, out, elsewhere):
        folder.mkdir()
    make_test_image(inputs / "s.jpg")
    make_test_image(inputs / "t.png")
    make_test_image(inputs / "u.jpg")
    (out / "s.png").symlink_to(inputs / "t.png")
    (elsewhere / "keep.png").write_bytes(b"not the batch's")
    (out / "u.png").symlink_to(elsewhere / "keep.png")
    original = (inputs / "t.png").read_bytes()

    done, report = batch(inputs, out, "-y")
    assert done.returncode == 1
    assert (inputs / "t.png").read_bytes() == original
    assert (elsewhere / "keep.png").read_bytes() == b"not the batch's"
    found = statuses(report)
    assert "is the input t.png itself" in found["s.jpg"][1]
    assert found["u.jpg"][0] == "failed" and "would be written outside" in found["u.jpg"][1]


@pytest.mark.parametrize("taken_by", ["file", "broken link"])
def test_a_file_where_an_output_folder_goes_fails_that_file_alone(tmp_path, taken_by):
    """It stopped the whole batch, nothing upscaled, with an unexpected FileExistsError."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    (inputs / "sub").mkdir(parents=True)
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    make_test_image(inputs / "sub" / "b.jpg")
    if taken_by == "file":
        (out / "sub").write_bytes(b"mine")
    else:
        (out / "sub").symlink_to(tmp_path / "nowhere")
    done, report = batch(inputs, out)
    assert done.returncode == 1, done.stderr.decode()
    found = statuses(report)
    assert found["a.jpg"][0] == "done"
    assert found["sub/b.jpg"] == ("failed", f"a file or a broken link in {out} stands where its folder goes; move it "
                                            "away and rerun")
    assert (out / "sub").is_symlink() or (out / "sub").read_bytes() == b"mine"


def test_partial_outputs_in_in_dir_are_not_taken_for_inputs(tmp_path):
    """IN_DIR the OUT_DIR of a run that was killed, or that still writes: its half-written
    files were read as inputs and failed as damaged."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "a.jpg")
    (inputs / ".b.srpipe-otherhost-123-abcd1234.partial.png").write_bytes(b"half written")
    (inputs / ".srpipe-batch.journal").write_text("")
    done, report = batch(inputs, out)
    assert done.returncode == 0, done.stderr.decode()
    assert [f["input"] for f in report["files"]] == ["a.jpg"]
    assert f"Warning: {inputs} is another srpipe batch's OUT_DIR: its outputs are upscaled again" in \
        done.stderr.decode()


def test_special_files_are_neither_read_nor_written(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_image(inputs / "a.jpg")
    os.mkfifo(inputs / "in-fifo.mp4")  # reading it would wait for a writer forever
    os.mkfifo(out / "a.png")  # writing into it would wait for a reader forever
    done = subprocess.run([sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-y", "--json"],
                          capture_output=True, timeout=120)
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr.decode()
    found = statuses(report)
    assert found["in-fifo.mp4"] == ("skipped", "a FIFO, not a regular file")
    assert found["a.jpg"] == ("failed", "its output a.png is a FIFO; it was left alone")
    assert stat.S_ISFIFO((out / "a.png").lstat().st_mode)


def test_a_name_with_a_newline_stays_on_one_line(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_image(inputs / "two\nlines.png")
    done, report = batch(inputs, out)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 2, lines  # the file's line and the summary
    assert lines[0].startswith("[1/1] done     two\\nlines.png -> two\\nlines.png (1 frame, ")
    assert report["files"][0]["input"] == "two\nlines.png"  # JSON keeps the real name
    assert (out / "two\nlines.png").is_file()


def test_names_are_shown_escaped_like_ls_b():
    assert shown("plain name.mp4") == "plain name.mp4"
    assert shown("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert shown("back\\slash") == "back\\\\slash"  # unambiguous: a real backslash-n is not a newline
    assert shown("\x1b[31mred") == "\\x1b[31mred"  # no terminal escapes
    assert shown("line\u2028sep") == "line\\u2028sep"
    assert shown(os.fsdecode(b"caf\xe9.mp4")) == "caf\\xe9.mp4"  # a byte that is not UTF-8
    assert shown("café ünïcode.mp4") == "café ünïcode.mp4"


def test_invisible_characters_in_names_are_shown_escaped():
    """Format characters and other non-printables: a name that reads backwards (U+202E), one
    with a zero-width space, a tag character; a C1 control is told apart from a byte."""
    assert shown("report\u202egpj.exe") == "report\\u202egpj.exe"
    assert shown("zero\u200bwidth\ufeff") == "zero\\u200bwidth\\ufeff"
    assert shown("tag\U000e0041") == "tag\\U000e0041"
    assert shown("nel\x85") == "nel\\u0085" and shown(os.fsdecode(b"nel\x85")) == "nel\\x85"
    assert shown("no\u00a0break") == "no\\u00a0break"


def test_the_bar_shows_the_current_name_escaped():
    stream = io.StringIO()
    progress = BatchProgress(stream=stream, terminal=True)
    job = types.SimpleNamespace(rel="new\nline.png", chunk=types.SimpleNamespace(frames=1), source=None)
    progress.on_plan([job])
    progress.on_start(job)
    progress.on_frame()
    progress.on_file(types.SimpleNamespace(input="new\nline.png", status="done", frames=1, seconds=0.1,
                                           output="new\nline.png", error=None, model=None, variant=None,
                                           frames_deinterlaced=0))
    progress.close()
    text = stream.getvalue()
    assert "file 1/1 new\\nline.png" in text and "new\nline" not in text
    assert "done     new\\nline.png -> new\\nline.png (1 frame, 0.1 s)" in text


def test_warnings_from_worker_processes_are_one_line_as_the_commands_own(tmp_path):
    import av
    import numpy as np

    (tmp_path / "in").mkdir()
    for name in ("a.mov", "b.mov"):  # transparency that MP4's x264 drops, with a warning from the worker
        with av.open(str(tmp_path / "in" / name), "w") as container:
            stream = container.add_stream("png", rate=10)
            stream.width, stream.height, stream.pix_fmt = 40, 30, "rgba"
            pixels = np.zeros((30, 40, 4), np.uint8)
            pixels[15:, :, 3] = 255  # the top half transparent
            for i in range(2):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgba")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    done, _ = batch(tmp_path / "in", tmp_path / "out", "--jobs", "2", "-q")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    assert sorted(lines) == [f"Warning: the alpha channel of {tmp_path / 'in' / name} is dropped: libx264 cannot "
                             "write it as yuv444p; use --codec ffv1 (.mkv), libvpx-vp9 (.webm) or prores_ks (.mov) "
                             "to keep it"
                             for name in ("a.mov", "b.mov")]


def test_a_full_disk_fails_the_file_and_the_next_run_redoes_it(tmp_path):
    """OpenCV reported an image cut short by a full disk as written: the batch took it as done for good."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_test_image(src / "a.png", width=100, height=80)
    whole = run_srpipe("upscale", src / "a.png", "-o", tmp_path / "whole.png", "-m", "bicubic")
    assert whole.returncode == 0, whole.stderr.decode()
    limit = (tmp_path / "whole.png").stat().st_size - 10  # the batch's record fits, the picture does not
    args = [sys.executable, "-m", "srpipe", "batch", str(src), str(out), "-m", "bicubic"]
    full = subprocess.run(args, capture_output=True, preexec_fn=file_size_limit(limit), timeout=120)
    assert full.returncode == 1 and "FAILED   a.png: cannot write" in full.stderr.decode(), full.stderr.decode()
    assert not (out / "a.png").exists()
    again = subprocess.run(args, capture_output=True, timeout=120)
    assert again.returncode == 0 and "done     a.png" in again.stderr.decode(), again.stderr.decode()
    assert (out / "a.png").read_bytes() == (tmp_path / "whole.png").read_bytes()


def test_a_batch_record_that_cannot_be_written_is_one_line(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_test_image(src / "a.png")
    done = subprocess.run([sys.executable, "-m", "srpipe", "batch", str(src), str(tmp_path / "out")],
                          capture_output=True, preexec_fn=file_size_limit(0), timeout=120)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    journal = tmp_path / "out" / ".srpipe-batch.journal"
    assert lines[0].startswith(f"Error: cannot write {journal}") and "free space" in lines[0]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root reads any folder, and setpriv (util-linux), to run as nobody, is missing")
def test_a_folder_that_cannot_be_read_fails_naming_itself(tmp_path):
    """A folder the batch could not list was passed over without a word (os.walk's way): its files
    were not upscaled and the batch ended with 0. Root reads any folder: as root the batch runs as
    nobody (setpriv), in a folder nobody may reach."""
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(dir="/tmp")) if as_root else tmp_path
    try:
        base.chmod(0o777)
        inputs = base / "in"
        (inputs / "sub").mkdir(parents=True)
        make_test_video(inputs / "a.mp4", frames=3, audio=False)
        make_test_video(inputs / "sub" / "b.mp4", frames=3, audio=False)
        for folder in (inputs, inputs / "sub"):
            folder.chmod(0o755)
            for file in folder.glob("*.mp4"):
                file.chmod(0o644)
        (inputs / "sub").chmod(0)

        def run(folder):
            command = [sys.executable, "-m", "srpipe", "batch", str(folder), str(base / "out"), "-m", "bicubic",
                       "--json", "-q"]
            if as_root:
                command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
            return subprocess.run(command, capture_output=True, cwd=base, timeout=120,
                                  env={**os.environ, "HOME": str(base), "XDG_CACHE_HOME": str(base / "cache")})

        done = run(inputs)
        assert done.returncode == 1, done.stderr.decode()
        assert statuses(json.loads(done.stdout)) == {
            "a.mp4": ("done", None),
            "sub/": ("failed", "the folder cannot be read (Permission denied); nothing in it is upscaled: check its "
                               "permissions")}
        inputs.chmod(0)
        done = run(inputs)
        assert done.stderr.decode().splitlines()[-1] == \
            f"Error: cannot read the folder {inputs} (Permission denied); check its permissions"
    finally:
        for folder in (inputs, inputs / "sub"):
            folder.chmod(0o755)
        if as_root:
            shutil.rmtree(base)


def test_the_lost_and_found_folder_of_a_drive_is_no_failure(tmp_path):
    """Only root may read a file system's lost+found: a batch over a drive's top failed there on
    every run. Elsewhere a folder of that name is the user's."""
    from srpipe.default_plugins.batch.engine import _fsck_folder

    assert _fsck_folder("/lost+found") and not _fsck_folder(str(tmp_path / "lost+found"))
