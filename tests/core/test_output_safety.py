"""Outputs that must not be written: the input in any of its forms, names too long for the file
system; and outputs whose reader leaves, and encoders that refuse, ending cleanly (issue #27)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from test_faults import assert_one_line_error, listing

from srpipe.errors import SrpipeError
from srpipe.outputs import _HOST, AtomicOutput, process_exists, remove_dead_partials
from srpipe.plugin_guard import Stop
from srpipe.testing import make_test_image, make_test_video

from conftest import file_size_limit, open_fifo, run_srpipe
from media import video_info


def srpipe_with_stdin(stdin, *args, cwd=None):
    """``python -m srpipe ARGS`` with standard input read from the open file ``stdin``."""
    return subprocess.run([sys.executable, "-m", "srpipe", *map(str, args)], stdin=stdin, capture_output=True,
                          cwd=cwd, timeout=300)


@pytest.fixture
def clip(tmp_path):
    return make_test_video(tmp_path / "in clip.mp4", frames=3)


# 1-2. The input is never replaced, whatever form names it -----------------------------------

@pytest.mark.parametrize("form", ["file:relative", "file:absolute", "file:///absolute", "-", "pipe:0", "fd:",
                                  "concat:", "concat:a|b", "async:file:", "cache:file:", "async:cache:"])
def test_an_input_named_as_a_url_or_standard_input_is_not_replaced_by_its_own_upscale(clip, tmp_path, form):
    before = clip.read_bytes()
    (tmp_path / "other.mp4").write_bytes(before)
    location = {"file:relative": f"file:{clip.name}", "file:absolute": f"file:{clip}",
                "file:///absolute": f"file://{clip}", "concat:a|b": f"concat:other.mp4|{clip.name}",
                }.get(form, f"{form}{clip.name}" if form.endswith(":") and form != "fd:" else form)
    with open(clip, "rb") as stdin:
        done = srpipe_with_stdin(stdin, "upscale", location, "--input-format", "mp4", "-o", clip.name, "-y",
                                 cwd=tmp_path)
    assert_one_line_error(done, f"output {clip.name} is the input file", "choose another name with -o")
    assert clip.read_bytes() == before
    assert listing(tmp_path) == sorted([clip.name, "other.mp4"])


@pytest.mark.parametrize("link", [os.link, os.symlink])
@pytest.mark.parametrize("form", ["path", "file:", "-"])
def test_a_link_to_the_input_is_the_input(clip, tmp_path, link, form):
    link(clip, tmp_path / "out.mp4")
    before = clip.read_bytes()
    location = {"path": clip, "file:": f"file:{clip}"}.get(form, form)
    with open(clip, "rb") as stdin:
        done = srpipe_with_stdin(stdin, "upscale", location, "-o", tmp_path / "out.mp4", "-y")
    assert_one_line_error(done, "is the input file, or a link to it")
    assert clip.read_bytes() == before and (tmp_path / "out.mp4").read_bytes() == before
    assert listing(tmp_path) == sorted([clip.name, "out.mp4"])


def test_standard_input_from_a_pipe_or_a_fifo_is_read_as_before(tmp_path):
    clip = make_test_video(tmp_path / "in.mkv", frames=3)
    (tmp_path / "old.mkv").write_bytes(b"an earlier output")
    piped = run_srpipe("upscale", "-", "-o", tmp_path / "old.mkv", "-y", input=clip.read_bytes())
    assert piped.returncode == 0, piped.stderr.decode()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(clip.read_bytes()))
    writer.start()
    with open(fifo, "rb") as stdin:
        from_fifo = srpipe_with_stdin(stdin, "upscale", "-", "--input-format", "matroska", "-o", tmp_path / "f.mkv")
    writer.join()
    assert from_fifo.returncode == 0, from_fifo.stderr.decode()
    assert len(video_info(tmp_path / "old.mkv")["times"]) == len(video_info(tmp_path / "f.mkv")["times"]) == 3


@pytest.mark.parametrize("form", ["concatf:list.txt", "subfile:NAME", "subfile,,start,0,end,0,,:NAME"])
def test_an_input_whose_files_cannot_be_told_never_replaces_an_existing_output(clip, tmp_path, form):
    """FFmpeg protocols that read files the location does not name: srpipe cannot compare them."""
    (tmp_path / "list.txt").write_text(f"{clip.name}\n")
    before = clip.read_bytes()
    location = form.replace("NAME", clip.name)
    done = run_srpipe("upscale", location, "-o", clip.name, "-y", cwd=tmp_path)
    assert_one_line_error(done, f"cannot tell whether {location} reads {clip.name}",
                          f"give the input as a plain path, or remove {clip.name} first")
    assert clip.read_bytes() == before
    fresh = run_srpipe("upscale", location, "-o", "new.mkv", cwd=tmp_path)  # nothing to replace: it runs
    assert fresh.returncode == 0, fresh.stderr.decode()
    assert len(video_info(tmp_path / "new.mkv")["times"]) == 3
    assert clip.read_bytes() == before


def test_a_file_named_like_a_url_read_as_itself_is_not_replaced(tmp_path):
    """The still-image reader opens the location as a path: ``file:x.png`` is then that file."""
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "file:x.png"), np.full((8, 10, 3), 90, np.uint8))
    before = (tmp_path / "file:x.png").read_bytes()
    done = run_srpipe("upscale", "file:x.png", "-o", "file:x.png", "-y", cwd=tmp_path)
    assert_one_line_error(done, "output file:x.png is the input file")
    assert (tmp_path / "file:x.png").read_bytes() == before and listing(tmp_path) == ["file:x.png"]


def test_a_percent_in_a_file_url_is_part_of_the_name_as_ffmpeg_opens_it(clip, tmp_path):
    """FFmpeg decodes nothing in ``file:``: ``file:in%20clip.mp4`` is that file, not ``in clip.mp4``."""
    os.rename(clip, tmp_path / "in%20clip.mp4")
    (tmp_path / "in clip.mp4").write_bytes(b"an earlier output")
    before = (tmp_path / "in%20clip.mp4").read_bytes()
    done = run_srpipe("upscale", "file:in%20clip.mp4", "-o", "in clip.mp4", "-y", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "in%20clip.mp4").read_bytes() == before
    assert len(video_info(tmp_path / "in clip.mp4")["times"]) == 3


@pytest.mark.parametrize("mode", ["ab", "r+b"])  # -o - >> in.mp4, -o - 1<> in.mp4
def test_standard_output_into_the_input_is_refused_as_cat_does(clip, tmp_path, mode):
    before = clip.read_bytes()
    with open(clip, mode) as stdout:
        done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", clip, "-o", "-", "--format", "matroska"],
                              stdout=stdout, stderr=subprocess.PIPE, timeout=300)
    assert_one_line_error(done, f"standard output is the input file {clip}", "redirect it to another file")
    assert clip.read_bytes() == before and listing(tmp_path) == [clip.name]


def test_standard_output_into_a_file_with_data_is_refused_where_the_input_cannot_be_told(clip, tmp_path):
    (tmp_path / "list.txt").write_text(f"{clip.name}\n")
    (tmp_path / "kept.mkv").write_bytes(b"data")
    command = [sys.executable, "-m", "srpipe", "upscale", "concatf:list.txt", "-o", "-", "--format", "matroska"]
    with open(tmp_path / "kept.mkv", "ab") as stdout:
        done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, cwd=tmp_path, timeout=300)
    assert_one_line_error(done, "cannot tell whether concatf:list.txt reads the file standard output goes to")
    assert (tmp_path / "kept.mkv").read_bytes() == b"data"
    with open(tmp_path / "new.mkv", "wb") as stdout:  # a new, empty file: nothing to lose
        done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "new.mkv")["times"]) == 3


def test_file_identities_tell_one_file_in_every_form(tmp_path):
    from srpipe.outputs import file_identities

    def same_file(a, b):
        return not file_identities(a).isdisjoint(file_identities(b))

    target = tmp_path / "a b%.mp4"
    target.write_bytes(b"x")
    (tmp_path / "other.mp4").write_bytes(b"x")
    os.link(target, tmp_path / "hard.mp4")
    for form in (str(target), f"file:{target}", f"file://{target}", f"concat:{tmp_path / 'other.mp4'}|{target}",
                 f"async:cache:file:{target}", f"camera:{target}?video_size=64x48", tmp_path / "hard.mp4"):
        assert same_file(tmp_path / "hard.mp4", form), form
    for form in (tmp_path / "other.mp4", "http://example.com/a.mp4", str(tmp_path / "missing.mp4"),
                 f"file:{quote(str(target))}", f"file://localhost{target}"):  # as FFmpeg opens them: other files
        assert not same_file(target, form), form
    assert not same_file(tmp_path / "missing.mp4", tmp_path / "missing.mp4")  # nothing to replace there
    assert not same_file(Path("-"), "-")  # a path object is a path, never standard input


def test_only_network_urls_and_named_files_let_an_existing_output_be_replaced(tmp_path):
    from srpipe.outputs import check_output_path

    (tmp_path / "out.mp4").write_bytes(b"x")
    for told in ("http://example.com/a.mp4", "rtsp://host/live", "srt://host:9000", "concat:a.mp4|b.mp4",
                 "async:file:a.mp4", str(tmp_path / "in.mp4")):
        check_output_path(tmp_path / "out.mp4", told, overwrite=True)
    for untold in ("concatf:list.txt", "subfile:a.mp4", "crypto:a.mp4", "data:,x", "hls+file:a.m3u8",
                   "gradient:64x48", "concat:a.mp4|concatf:list.txt", "HTTP://example.com/a.mp4"):
        with pytest.raises(SrpipeError, match="cannot tell whether"):
            check_output_path(tmp_path / "out.mp4", untold, overwrite=True)


# 3. Outputs that look like URLs -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["file:x.mkv", "pipe:1"])
def test_an_output_named_like_a_url_is_the_file_it_is_written_to_and_checked_first(clip, tmp_path, name):
    (tmp_path / name).write_bytes(b"kept")
    done = run_srpipe("upscale", clip, "-o", name, cwd=tmp_path)
    assert_one_line_error(done, f"output {name} already exists; pass --overwrite to replace it")
    assert (tmp_path / name).read_bytes() == b"kept"
    done = run_srpipe("upscale", clip, "-o", name, "-y", "--format", "matroska", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / name)["times"]) == 3


def test_a_network_output_is_one_line_saying_how_to_stream(clip, tmp_path):
    done = run_srpipe("upscale", clip, "-o", "tcp://127.0.0.1:1/x.mkv", cwd=tmp_path)
    assert_one_line_error(done, "output tcp://127.0.0.1:1/x.mkv is a network address",
                          "srpipe writes files and standard output: to stream, pipe -o - into ffmpeg")
    assert listing(tmp_path) == [clip.name]


def test_a_network_output_no_sink_plugin_takes_is_refused_by_srpipes_writer(clip, tmp_path, monkeypatch):
    """With a plugin that writes outputs installed, a URL is its to judge; declined, srpipe's writer refuses it."""
    from srpipe import hookimpl
    from srpipe.plugins import make_plugin_manager
    from srpipe.upscaling import upscale

    class Declines:
        @hookimpl
        def open_sink(self, location, source, options):
            return None

    pm = make_plugin_manager()
    pm.register(Declines())
    monkeypatch.chdir(tmp_path)  # where the URL, taken as a path, would be written
    with pytest.raises(SrpipeError, match="is a network address; srpipe writes files and standard output"):
        upscale(str(clip), "rtmp://127.0.0.1:1/live", model="bicubic", device="cpu", pm=pm)
    assert listing(tmp_path) == [clip.name]


# 10. Long output names -----------------------------------------------------------------------

@pytest.mark.parametrize("stem", ["a" * 220, "b" * 251, "é" * 125])  # 224, 255 and 254 bytes with .mkv
def test_output_names_up_to_the_file_systems_limit_work(cli_run, tmp_path, stem):
    clip = make_test_video(tmp_path / "in.mp4", frames=3, audio=False)
    name = f"{stem}.mkv"
    assert len(os.fsencode(name)) <= os.pathconf(tmp_path, "PC_NAME_MAX")
    done = cli_run("upscale", clip, "-o", tmp_path / name, "-q")
    assert done.exit_code == 0, done.output
    assert len(video_info(tmp_path / name)["times"]) == 3
    assert listing(tmp_path) == sorted(["in.mp4", name])


def test_an_output_name_over_the_limit_is_one_line_naming_the_limit(tmp_path):
    clip = make_test_video(tmp_path / "in.mp4", frames=3, audio=False)
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    done = run_srpipe("upscale", clip, "-o", tmp_path / ("c" * (limit - 3) + ".mkv"))
    assert_one_line_error(done, f"is {limit + 1} bytes long; file names here take at most {limit} bytes",
                          "choose a shorter name with -o")
    assert listing(tmp_path) == ["in.mp4"]


def test_a_name_over_the_limit_from_a_writer_names_no_option(tmp_path):
    """AtomicOutput also writes batch outputs, where no -o names them."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(SrpipeError) as refused:
        AtomicOutput(tmp_path / ("c" * limit + ".mkv"), overwrite=False)
    assert str(refused.value).endswith(f"file names here take at most {limit} bytes: choose a shorter name")


def test_output_checks_load_no_hashlib():
    """Every command loads srpipe.outputs; hashlib is only for a long name's partial."""
    done = subprocess.run([sys.executable, "-c", "import sys, srpipe.outputs; print('hashlib' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_shortened_partials_of_a_long_name_are_cleaned_up_as_its_own(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()  # a process id that is gone
    long_a, long_b = tmp_path / ("d" * 240 + "-a.mp4"), tmp_path / ("d" * 240 + "-b.mp4")

    def dead_partial(final):
        output = AtomicOutput(final, overwrite=False)
        killed = output.temp.with_name(output.temp.name.replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
        output.temp.rename(killed)
        return killed

    partial_a, partial_b = dead_partial(long_a), dead_partial(long_b)
    assert partial_a.name.startswith(".dddd") and f".srpipe-{_HOST}-{dead.pid}-" in partial_a.name
    assert partial_a.name.endswith(".partial.mp4")
    assert partial_a.name.split(".srpipe-")[0] != partial_b.name.split(".srpipe-")[0]  # the same 200 d's, cut
    with AtomicOutput(long_a, overwrite=False).temp.open("wb"):  # a later run for long_a
        pass
    assert not partial_a.exists() and partial_b.exists()



@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="a zombie is told apart where /proc tells")
def test_the_partial_of_a_process_that_ended_and_is_not_yet_reaped_is_dead(tmp_path):
    """A killed batch's worker, adopted by a first process that reaps only now and then, was a
    zombie for a while: its partial outputs were taken for a running process's, and left."""
    ended = subprocess.Popen([sys.executable, "-c", ""])
    try:
        stat = Path(f"/proc/{ended.pid}/stat")
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":  # ended; not waited for
            time.sleep(0.01)
        assert not process_exists(ended.pid)
        partial = tmp_path / f".a.srpipe-{_HOST}-{ended.pid}-abcdefgh.partial.mp4"
        partial.write_bytes(b"half")
        remove_dead_partials(tmp_path)
        assert not partial.exists()
    finally:
        ended.wait()
    assert process_exists(os.getpid())

# 14. A reader that leaves ----------------------------------------------------------------------

@pytest.mark.parametrize("to", ["stdout", "fifo"])
def test_a_reader_that_closes_the_output_early_ends_srpipe_quietly(tmp_path, to):
    clip = make_test_video(tmp_path / "in.mp4", frames=30, width=160, height=120)
    target = "-" if to == "stdout" else tmp_path / "fifo.mkv"
    if to == "fifo":
        os.mkfifo(target)
    # lossless: the output is far larger than a pipe holds, so writes go on after the reader leaves
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "upscale", clip, "-o", target, "--format",
                                "matroska", "--codec", "ffv1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with (process.stdout if to == "stdout" else open_fifo(target, "rb", process)) as reader:
        assert len(reader.read(1000)) == 1000
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""
    assert listing(tmp_path) == sorted(["in.mp4", *(["fifo.mkv"] if to == "fifo" else [])])


# 15c. Encoder refusals ------------------------------------------------------------------------

def test_an_odd_size_for_x264_is_one_clean_line_saying_what_to_do(tmp_path):
    clip = make_test_video(tmp_path / "in.mp4", frames=3)
    done = run_srpipe("upscale", clip, "--width", "101", "--height", "77", "-o", tmp_path / "out.mp4")
    assert_one_line_error(done, "encoder libx264 refused the settings: width not divisible by 2 (101x77)",
                          "yuv420p needs even sizes: use --pix-fmt yuv444p or --codec ffv1")
    assert "Errno" not in done.stderr.decode() and "avcodec_open2" not in done.stderr.decode()
    assert listing(tmp_path) == ["in.mp4"]


def test_a_size_over_what_x264_takes_is_one_line_naming_it(tmp_path):
    clip = make_test_video(tmp_path / "in.mkv", width=8, height=9000, frames=1, codec="ffv1", audio=False)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mp4")
    assert_one_line_error(done, "encoder libx264 refused the settings: invalid width x height (16x18000)",
                          "the output is 16x18000: choose a smaller size (--width, --height, -s) or --codec ffv1")
    assert listing(tmp_path) == ["in.mkv"]


def test_a_preset_x264_does_not_have_is_one_line_naming_those_it_has(tmp_path):
    clip = make_test_video(tmp_path / "in.mp4", frames=3)
    done = run_srpipe("upscale", clip, "--preset", "warp", "-o", tmp_path / "out.mp4")
    assert_one_line_error(done, "--preset warp is not a libx264 preset; use one of ultrafast,", "placebo")
    assert listing(tmp_path) == ["in.mp4"]


def test_encoder_refusals_name_the_encoders_own_reason():
    import av

    from srpipe.video import encoder_refusal, ffmpeg_errors

    with av.open(os.devnull, "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"profile": "nonsense"}
        with ffmpeg_errors() as logs, pytest.raises(av.FFmpegError) as refused:
            container.start_encoding()
        error = encoder_refusal(stream, refused.value, logs)
    assert isinstance(error, SrpipeError)
    assert str(error) == "encoder libx264 refused the settings: Error setting profile nonsense; " \
                         "check --codec, --crf, --preset"


def test_after_a_capture_ffmpeg_is_silent_with_a_level_a_thread_can_compare_and_a_users_level_comes_back():
    """PyAV's level None, put back after a capture, made a thread inside PyAV's callback compare with
    None, and PyAV printed a traceback into the run; a level the user set between captures stays."""
    import av

    from srpipe.video import AV_LOG_QUIET, ffmpeg_errors

    before = av.logging.get_level()
    try:
        av.logging.set_level(None)  # PyAV's default: no messages
        with ffmpeg_errors():
            pass
        assert av.logging.get_level() == AV_LOG_QUIET  # a number, and nothing printed (FFmpeg's callback)
        with ffmpeg_errors():
            pass
        assert av.logging.get_level() == AV_LOG_QUIET
        av.logging.set_level(av.logging.VERBOSE)  # a user's, or a plugin's
        with ffmpeg_errors():
            pass
        assert av.logging.get_level() == av.logging.VERBOSE
    finally:
        av.logging.set_level(before)


def test_a_closed_standard_error_neither_fails_the_run_nor_lands_in_the_output(tmp_path):
    """``2>&-``: Python has no stderr, and the output's file would take descriptor 2."""
    clip = tmp_path / "in.mp4"
    make_test_video(clip, frames=3)
    command = [sys.executable, "-m", "srpipe", "upscale", clip]
    closing_stderr = {"preexec_fn": lambda: os.close(2), "timeout": 300}  # before Python starts, as 2>&- does
    out = tmp_path / "out.mkv"
    with open(tmp_path / "piped.mkv", "wb") as piped:
        done = subprocess.run([*command, "-o", "-", "--format", "matroska"], stdout=piped, **closing_stderr)
    assert done.returncode == 0
    assert b"Error" not in (tmp_path / "piped.mkv").read_bytes()
    assert len(video_info(tmp_path / "piped.mkv")["times"]) == 3
    done = subprocess.run([*command, "-o", out], stdout=subprocess.DEVNULL, **closing_stderr)
    assert done.returncode == 0 and len(video_info(out)["times"]) == 3


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Stop])
def test_a_stop_while_the_output_opens_leaves_no_partial(tmp_path, monkeypatch, stop):
    """Ctrl-C, or the SIGTERM that stops a batch worker, landing just after the partial file
    was made and before its writer holds it: the partial goes all the same."""
    from srpipe import outputs
    from srpipe.upscaling import upscale

    clip = make_test_video(tmp_path / "in.mp4", frames=2)
    made = outputs.AtomicOutput.__init__

    def made_then_stopped(self, *args, **kwargs):
        made(self, *args, **kwargs)
        assert self.temp.exists()
        raise stop()

    monkeypatch.setattr(outputs.AtomicOutput, "__init__", made_then_stopped)
    other = tmp_path / ".out.srpipe-otherhost-1-abc.partial.mp4"  # another process's: not this one's to remove
    other.write_bytes(b"")
    with pytest.raises(stop):
        upscale(str(clip), str(tmp_path / "out.mp4"), model="bicubic")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "in.mp4"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp"])
@pytest.mark.parametrize("short_by", [1, 3000])
def test_an_image_cut_short_by_a_full_disk_is_an_error_not_an_output(tmp_path, suffix, short_by):
    """OpenCV reports an image written when the flush of its last buffer failed: a file a few
    kilobytes short (or empty) was kept under the final name, and a batch took it as done."""
    rng = np.random.default_rng(5)
    cv2.imwrite(str(tmp_path / "in.png"), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
    whole = run_srpipe("upscale", tmp_path / "in.png", "-m", "bicubic", "-o", tmp_path / f"whole{suffix}")
    assert whole.returncode == 0, whole.stderr.decode()
    limit = max(0, (tmp_path / f"whole{suffix}").stat().st_size - short_by)
    done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(tmp_path / "in.png"), "-m", "bicubic",
                           "-o", str(tmp_path / f"out{suffix}")], capture_output=True,
                          preexec_fn=file_size_limit(limit), timeout=120)
    assert_one_line_error(done, f"cannot write {tmp_path / f'out{suffix}'}")
    assert sorted(listing(tmp_path)) == sorted(["in.png", f"whole{suffix}"])


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_an_image_on_standard_output_cut_short_by_a_full_disk_is_an_error(tmp_path, unbuffered):
    """Under PYTHONUNBUFFERED (set in many container images) standard output is unbuffered, and a
    write onto a nearly full disk takes what fits and returns that count: the rest was dropped
    and srpipe ended with 0 and a cut-short picture in the file."""
    rng = np.random.default_rng(5)
    cv2.imwrite(str(tmp_path / "in.png"), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
    with open(tmp_path / "out.png", "wb") as stdout:
        done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(tmp_path / "in.png"), "-m", "bicubic",
                               "-o", "-"], stdout=stdout, stderr=subprocess.PIPE, preexec_fn=file_size_limit(4096),
                              env={**os.environ, "PYTHONUNBUFFERED": unbuffered}, timeout=120)
    assert_one_line_error(done, "cannot write -")


@pytest.mark.parametrize("name", ["in.png", "clip.mp4"])
def test_an_output_through_a_folder_that_does_not_exist_is_refused_before_the_work(tmp_path, name):
    """'missing/../out' names the folder it is in by name, but the file system needs 'missing':
    the whole upscale ran, then its output could not be put in place ('unexpected FileNotFoundError')."""
    source = make_test_image(tmp_path / name) if name.endswith(".png") else make_test_video(tmp_path / name, frames=3)
    output = f"missing/../out{source.suffix}"
    done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", name, "-o", output], cwd=tmp_path,
                          capture_output=True, timeout=120)
    assert_one_line_error(done, "output folder missing/.. cannot be reached (No such file or directory)")
    assert listing(tmp_path) == [name]


@pytest.mark.parametrize("command, name, output", [
    ("upscale", "in.png", "new.png/"), ("upscale", "in.png", "new.png/."), ("upscale", "clip.mp4", "new.mp4/"),
    ("live", "clip.mp4", "new.mp4/")])
def test_an_output_named_as_a_folder_is_refused_not_written_as_a_file(tmp_path, command, name, output):
    """'-o new.png/' wrote a file new.png, exit 0: a path object drops the ending that names a folder."""
    source = make_test_image(tmp_path / name) if name.endswith(".png") else make_test_video(tmp_path / name, frames=3)
    option = "-o" if command == "upscale" else "--record"
    args = ["upscale", name] if command == "upscale" else ["live", "--source", name, "--no-window"]
    done = run_srpipe(*args, option, output, cwd=tmp_path)
    assert_one_line_error(done, f"output {output} is a folder's name, not a file's; give a file name with {option}")
    assert listing(tmp_path) == [source.name]


@pytest.mark.parametrize("kind, mode", [("image", 0o600), ("image", 0o440), ("video", 0o640), ("batch", 0o600)])
def test_a_replaced_output_keeps_its_permissions(tmp_path, kind, mode):
    """-y gave the replaced file the umask's mode (a chmod 600 file came out 644, open to others):
    srpipe writes a new file and renames it, where FFmpeg's command writes into the old one."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    make = make_test_video if kind == "video" else make_test_image
    source = make(tmp_path / "in" / ("clip.mp4" if kind == "video" else "in.png"))
    output = tmp_path / "out" / source.name
    output.write_bytes(b"old")
    output.chmod(mode)
    args = ["batch", source.parent, output.parent] if kind == "batch" else ["upscale", source, "-o", output]
    done = run_srpipe(*args, "-y", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert output.read_bytes() != b"old" and oct(output.stat().st_mode & 0o7777) == oct(mode)
    umask = os.umask(0o022)
    os.umask(umask)
    new = tmp_path / f"new{source.suffix}"  # a new output: the usual mode, as the umask makes it
    assert run_srpipe("upscale", source, "-o", new, "-q").returncode == 0
    assert oct(new.stat().st_mode & 0o7777) == oct(0o666 & ~umask)
