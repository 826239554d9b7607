"""The command line: exit codes, one-line errors, nothing overwritten, pipes and URLs."""

import http.server
import json
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest

from srpipe.testing import make_test_image, make_test_video

from conftest import run_srpipe, served
from media import packets, video_info


@pytest.fixture
def clip(tmp_path):
    return make_test_video(tmp_path / "clip.mp4", frames=6)


def test_upscale_writes_default_name_and_summary(cli_run, clip):
    result = cli_run("upscale", clip, "--model", "bicubic")
    assert result.exit_code == 0, result.output
    assert (clip.parent / "clip_x2.mp4").exists()
    assert "6 frames" in result.stderr and "clip_x2.mp4" in result.stderr


def test_json_summary(cli_run, clip, tmp_path):
    result = cli_run("upscale", clip, "-o", tmp_path / "o.mkv", "--scale", "3", "--json", "-m", "lanczos")
    summary = json.loads(result.stdout)
    assert summary["frames"] == 6 and summary["scale"] == 3 and summary["model"] == "lanczos"
    assert summary["encoder"] == "libx264"
    assert video_info(tmp_path / "o.mkv")["width"] == 192
    silent = make_test_video(tmp_path / "silent.mp4", frames=2, audio=False)  # WebM cannot hold the clip's AAC
    webm = cli_run("upscale", silent, "-o", tmp_path / "o.webm", "--json", "-q")
    assert json.loads(webm.stdout)["encoder"] == "libvpx-vp9"


def test_existing_output_is_not_overwritten(cli_run, clip):
    target = clip.parent / "clip_x2.mp4"
    target.write_bytes(b"keep me")
    result = cli_run("upscale", clip)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "--overwrite" in result.stderr
    assert target.read_bytes() == b"keep me"
    assert cli_run("upscale", clip, "--overwrite").exit_code == 0
    assert video_info(target)["width"] == 128


def test_y_is_overwrite_as_in_ffmpeg(cli_run, clip):
    target = clip.parent / "clip_x2.mp4"
    target.write_bytes(b"old")
    assert cli_run("upscale", clip, "-y").exit_code == 0
    assert video_info(target)["width"] == 128


def test_binary_output_to_a_terminal_is_refused_with_a_hint(clip):
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(clip), "-o", "-"], stdout=slave,
                              stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("Error: -o - writes binary video to standard output, which is a terminal")
    assert "| ffplay -" in done.stderr.decode() and done.stderr.count(b"\n") == 1


def test_output_equal_to_input_is_refused(cli_run, clip):
    before = clip.read_bytes()
    result = cli_run("upscale", clip, "-o", clip, "--overwrite")
    assert result.exit_code == 1 and "is the input" in result.stderr
    assert clip.read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nosuch"], "unknown upscaler model 'nosuch'"),
        (["--scale", "5"], "does not support --scale 5; it supports 2, 3, 4: for more than x4, upscale its output"),
        (["-m", "espcn-x2", "--scale", "3"],
         "model 'espcn-x2' does not support --scale 3; it supports 2: -m espcn -s 3 has it"),
    ],
)
def test_bad_options_are_one_line_errors(cli_run, clip, args, message):
    result = cli_run("upscale", clip, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not list(clip.parent.glob("clip_x*"))


def written(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.mp4", "does not exist"),
    (lambda p: p, "is a directory"),
    (lambda p: written(p / "empty.mp4", b""), "is empty"),
    (lambda p: written(p / "notes.mp4", b"hello"), "cannot read"),
])
def test_bad_inputs_are_one_line_errors(cli_run, tmp_path, make, message):
    result = cli_run("upscale", make(tmp_path))
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_output_folder(cli_run, clip, tmp_path):
    result = cli_run("upscale", clip, "-o", tmp_path / "nope" / "out.mp4")
    assert result.exit_code == 1 and "does not exist; create it first" in result.stderr
    (tmp_path / "file.mp4").write_bytes(b"a file, where a folder was meant")
    result = cli_run("upscale", clip, "-o", tmp_path / "file.mp4" / "out.mp4")
    assert result.exit_code == 1 and result.stderr == (f"Error: output folder {tmp_path / 'file.mp4'} is a file, "
                                                       "not a folder; choose another name with -o\n")


def test_encoder_rejection_is_passed_on_and_nothing_left(cli_run, clip, tmp_path):
    result = cli_run("upscale", clip, "-o", tmp_path / "out.mp4", "--preset", "warp-speed")
    assert result.exit_code == 1 and "libx264" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_usage_error_exits_2(cli_run):
    assert cli_run("upscale").exit_code == 2


def test_an_empty_output_name_is_a_usage_error(cli_run, tmp_path):
    """-o "" (an unset shell variable) names no output whatever the input: it said "output  is a
    folder's name", exit 1, after the input was opened."""
    source = make_test_image(tmp_path / "in.png")
    result = cli_run("upscale", source, "-o", "")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '-o' / '--output': is empty (an unset shell variable?); give a path\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_models_and_plugins_listing(cli_run):
    models = json.loads(cli_run("models", "list", "--json").stdout)
    by_name = {m["name"]: m for m in models}
    assert by_name["bicubic"]["scales"] == [2, 3, 4]
    assert by_name["lanczos"]["plugin"] == "srpipe.default_plugins.classic"
    plugins = json.loads(cli_run("plugins", "--json").stdout)
    hooks = {p["name"]: p["hooks"] for p in plugins}
    assert hooks["srpipe.default_plugins.video_files"] == ["open_sink", "open_source"]
    assert "bicubic" in cli_run("models", "list").stdout


def test_stdin_to_stdout_pipeline(tmp_path):
    clip = make_test_video(tmp_path / "in.ts", frames=8)
    done = run_srpipe("upscale", "-", "-o", "-", "--format", "mpegts", "-q", input=clip.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "out.ts").write_bytes(done.stdout)
    info = video_info(tmp_path / "out.ts")
    assert len(info["times"]) == 8 and info["width"] == 128
    # MPEG-TS shifts every stream by the same constant to keep DTS non-negative.
    source_times, audio_in, audio_out = (video_info(clip)["times"], packets(clip, "audio"),
                                         packets(tmp_path / "out.ts", "audio"))
    shift = info["times"][0] - source_times[0]
    assert info["times"] == [t + shift for t in source_times]
    assert [(t + shift, data) for t, data in audio_in] == audio_out


def decoded_audio(path):
    """The samples of a file's audio, as a decoder gives them."""
    with av.open(str(path)) as container:
        return b"".join(bytes(frame.planes[0]) for frame in container.decode(audio=0))


def test_mpeg_ts_with_aac_streams_out_as_matroska(tmp_path):
    """MPEG-TS carries AAC with ADTS headers and no config beside it; Matroska written as a
    stream (-o -, with no --format: what a pipe gets) wants that config in its header."""
    clip = make_test_video(tmp_path / "in.ts", frames=8)
    for args, input in ((["-", "-o", "-"], clip.read_bytes()), ([str(clip), "-o", "-"], None)):
        done = run_srpipe("upscale", *args, "-q", input=input)
        assert done.returncode == 0, done.stderr.decode()
        (tmp_path / "out.mkv").write_bytes(done.stdout)
        assert len(video_info(tmp_path / "out.mkv")["times"]) == 8
        assert decoded_audio(tmp_path / "out.mkv") == decoded_audio(clip)


def test_the_aac_config_comes_from_the_adts_header_or_from_what_the_decoder_can_tell():
    from types import SimpleNamespace

    from srpipe.video import aac_audio_config, adts_audio_config

    lc_48k_6ch = bytes.fromhex("fff14d8079dffc")  # profile LC, rate index 3 (48 kHz), channel configuration 6
    assert adts_audio_config(lc_48k_6ch) == bytes.fromhex("11b0")
    he_core = bytes.fromhex("fff1588079dffc")  # HE-AAC's ADTS: LC at the core rate (24 kHz), the SBR implicit
    assert adts_audio_config(he_core) == bytes.fromhex("1310")  # LC, 24 kHz, stereo
    assert adts_audio_config(bytes.fromhex("fff14c0079dffc")) is None  # configuration 0: the channels in a PCE
    assert adts_audio_config(b"\x00" * 7) is None and adts_audio_config(b"\xff\xf1") is None
    assert aac_audio_config(SimpleNamespace(profile="LC", channels=6, sample_rate=48000)) == bytes.fromhex("11b0")
    # HE-AAC's decoder reports twice the core rate (and v2 two channels for one): no config from it
    assert aac_audio_config(SimpleNamespace(profile="HE-AAC", channels=2, sample_rate=48000)) is None
    assert aac_audio_config(SimpleNamespace(profile="LC", channels=7, sample_rate=48000)) is None


def test_json_goes_to_standard_error_when_the_video_takes_standard_output(tmp_path):
    clip = make_test_video(tmp_path / "in.mp4", frames=3)
    done = run_srpipe("upscale", clip, "-o", "-", "--json")
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert summary["output"] == "-" and summary["frames"] == 3
    (tmp_path / "out.mkv").write_bytes(done.stdout)
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 3


def test_a_container_that_refuses_its_header_is_named_not_the_encoder(tmp_path, monkeypatch):
    """Without the config given, Matroska refuses TS's AAC in the header it writes to a stream:
    the error says the container refused, not that x264 refused its settings."""
    import srpipe.video
    from srpipe.errors import SrpipeError
    from srpipe.upscaling import upscale

    monkeypatch.setattr(srpipe.video, "give_aac_config", lambda out_stream, in_stream, first: None)
    clip = make_test_video(tmp_path / "in.ts", frames=3)
    with pytest.raises(SrpipeError, match=r"^the matroska writer refused /dev/null: Error parsing AAC extradata.*; "
                                          r"try another container \(--format, or another output name\)$"):
        upscale(str(clip), "/dev/null")


def test_stream_input_needs_an_output_name(tmp_path):
    done = run_srpipe("upscale", "-", input=b"")
    assert done.returncode == 2 and b"Usage:" in done.stderr and b"name the output with -o" in done.stderr


def test_http_url_input(tmp_path):
    make_test_video(tmp_path / "served.mp4", frames=5)
    with served(tmp_path) as address:
        done = run_srpipe("upscale", f"{address}/served.mp4", "-o", tmp_path / "out.mp4", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "out.mp4")["times"]) == 5


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """HTTP/1.1 with byte ranges and keep-alive, which ends a connection its client asked to close
    (as nginx does): what FFmpeg's reader must not send a second request on."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = Path(self.directory, self.path.lstrip("/")).read_bytes()
        asked = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start = int(asked[1]) if asked else 0
        end = int(asked[2]) if asked and asked[2] else len(data) - 1
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end + 1 - start))
        self.end_headers()
        try:
            self.wfile.write(data[start:end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader had what it needed


@pytest.mark.parametrize("name", ["served.ts", "served.mp4"])  # MPEG-TS probed by seeking; an MP4 indexed at its end
def test_http_url_input_from_a_server_that_honours_byte_ranges(tmp_path, name):
    make_test_video(tmp_path / name, width=320, height=240, frames=30)  # more than FFmpeg's first reads
    with served(tmp_path, RangeHandler) as address:
        done = run_srpipe("upscale", f"{address}/{name}", "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 30


def test_an_address_that_serves_no_file_says_to_check_the_address(tmp_path):
    with served(tmp_path) as address:
        done = run_srpipe("upscale", f"{address}/missing.mp4", "-o", tmp_path / "out.mkv")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert "404" in lines[0] and "check the address and that the server is up" in lines[0]


@pytest.mark.parametrize("data", [b"", b"hello\n"])
def test_standard_input_without_video_says_so(tmp_path, data):
    done = run_srpipe("upscale", "-", "-o", tmp_path / "out.mkv", input=data)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("Error: cannot read standard input as video") and "pipe a video" in lines[0]


def test_python_dash_m_and_help_teach(tmp_path):
    done = run_srpipe("upscale", "--help")
    assert done.returncode == 0 and b"Examples:" in done.stdout and b"--overwrite" in done.stdout


_TEARDOWN_PROBE = """
import sys, threading
from srpipe.cli import _teardown_needed
print(_teardown_needed())
release = threading.Event()
worker = threading.Thread(target=release.wait)
worker.start()
print(_teardown_needed())  # a running thread: the interpreter must wait for it
release.set()
worker.join()
import multiprocessing
queue = multiprocessing.get_context("spawn").Queue()  # a semaphore its exit handler releases
print(_teardown_needed())
del queue
sys.modules["ray"] = object()  # Ray's exit handler stops its local cluster
print(_teardown_needed())
"""


def test_the_command_skips_teardown_only_when_nothing_needs_it():
    done = subprocess.run([sys.executable, "-c", _TEARDOWN_PROBE], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True", "True", "True"], done.stderr


def test_the_command_delivers_its_output_and_exit_code(tmp_path):
    done = run_srpipe("models", "list", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)
    done = run_srpipe("upscale", tmp_path / "missing.mp4")
    assert done.returncode == 1 and done.stderr.decode().startswith("Error:")


def test_the_summary_shows_an_odd_output_name_on_one_line(tmp_path):
    make_test_image(tmp_path / "in.png")
    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "two\nlines.png")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1].endswith("two\\nlines.png")  # as batch and ls -b show it
    assert (tmp_path / "two\nlines.png").exists()


def test_a_warning_is_written_as_one_line_in_one_write():
    """Standard error writes through: print's two writes (the text, then its newline) let two batch
    workers' warnings run into each other, '... to keep itWarning: the alpha channel of ...'."""
    import warnings

    from srpipe.cli import show_warnings_on_one_line

    class Writes:
        def __init__(self):
            self.calls = []

        def write(self, text):
            self.calls.append(text)

    file = Writes()
    show_warnings_on_one_line()
    warnings.showwarning("the alpha channel\nis dropped", UserWarning, "x.py", 1, file=file)
    assert file.calls == ["Warning: the alpha channel is dropped\n"]
