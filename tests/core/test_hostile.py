"""Hostile input and faults, round two (issue #18): files that lie about their size, special
files as outputs, stalled servers, damaged containers, broken models and plugins. Each ends in
one ``Error:`` line or correct output, with nothing lost, replaced or left behind."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_faults import assert_one_line_error, listing

from srpipe.errors import SrpipeError
from srpipe.outputs import _HOST
from srpipe.testing import damage_video, make_huge_claim_h264, make_huge_claim_png, make_test_image, make_test_video

from conftest import (
    FifoReader,
    default_sigint,
    open_fifo,
    run_srpipe,
    run_srpipe_measured,
    wait_for,
    wait_until_blocked,
)
from media import make_wmv, upscale_plugin_frames, video_info

PEAK_LIMIT_KB = 2 * 1024 * 1024  # peak resident memory allowed for a file that lies about its size


def run_measured(*args):
    """``srpipe ARGS`` in a subprocess: (CompletedProcess, its own peak resident memory in KiB)."""
    done, peak = run_srpipe_measured(*args)
    return done, peak // 1024


# 1. Memory: small files that claim huge frames -------------------------------------------


def test_h264_claiming_16000x16000_is_refused_before_decoding(tmp_path):
    clip = make_huge_claim_h264(tmp_path / "huge.h264", 16000, 16000)
    assert clip.stat().st_size < 10_000
    done, peak = run_measured("upscale", clip, "-o", tmp_path / "out.mp4")
    assert_one_line_error(done, "huge.h264 has 16000x16000 frames", "--max-pixels")
    assert peak < PEAK_LIMIT_KB
    assert listing(tmp_path) == ["huge.h264"]


@pytest.mark.parametrize("size, pixels", [(12000, True), (100000, False)])
def test_png_claiming_a_huge_size_is_refused_before_decoding(tmp_path, size, pixels):
    image = make_huge_claim_png(tmp_path / "huge.png", size, size, pixels=pixels)
    assert image.stat().st_size < 1_000_000
    done, peak = run_measured("upscale", image, "-o", tmp_path / "out.png")
    assert_one_line_error(done, f"huge.png has {size}x{size} frames", "--max-pixels")
    assert peak < PEAK_LIMIT_KB
    assert listing(tmp_path) == ["huge.png"]


@pytest.mark.parametrize("size, needles", [
    (30000, ("huge.y4m claims 30000x30000 frames, larger than FFmpeg decodes", "header is damaged")),
    (9000, ("huge.y4m has 9000x9000 frames (81.0 megapixels), over the limit", "--max-pixels 81000000"))])
def test_raw_video_whose_header_claims_a_huge_frame_is_refused_with_its_size(tmp_path, size, needles):
    """A YUV4MPEG header's size goes through FFmpeg's own check, whose error was an errno: "Device or
    resource busy". The refusal names the size, and the limit where raising it would help."""
    clip = tmp_path / "huge.y4m"
    clip.write_bytes(f"YUV4MPEG2 W{size} H{size} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(5000))
    done, peak = run_measured("upscale", clip, "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, *needles)
    assert_one_line_error(run_srpipe("eval", "-m", "bicubic", "--video", clip, "--crfs", "23"), *needles)
    assert peak < PEAK_LIMIT_KB
    assert listing(tmp_path) == ["huge.y4m"]


@pytest.mark.parametrize("name, codec, size", [("clip.mp4", "libx264", (64, 48)), ("clip.mkv", "ffv1", (64, 48)),
                                               ("clip.mp4", "libx264", (160, 90))])
def test_max_pixels_is_the_limit(tmp_path, name, codec, size):
    """Exactly: FFmpeg's decoders count a frame's rows aligned (160x90 as 192x90), and a limit of the
    frame's own size called the file damaged."""
    clip = make_test_video(tmp_path / name, codec=codec, width=size[0], height=size[1], frames=2)
    pixels = size[0] * size[1]
    assert_one_line_error(run_srpipe("upscale", clip, "--max-pixels", pixels - 1),
                          f"{size[0]}x{size[1]} frames ({pixels} pixels), over the limit of {pixels - 1} pixels",
                          f"--max-pixels {pixels}")
    assert_one_line_error(run_srpipe("live", "--source", clip, "--no-window", "--max-pixels", pixels - 1,
                                     "--on-decode-error", "skip"), f"--max-pixels {pixels}")
    done = run_srpipe("upscale", clip, "--max-pixels", pixels, "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert listing(tmp_path) == [name, f"clip_x2{Path(name).suffix}"]


def test_a_local_file_named_like_a_url_is_told_how_to_name_it(tmp_path):
    """``take1:good.mp4`` is, to FFmpeg as to its own command, a URL of protocol ``take1``: the run
    said "Protocol not found; check the address and that the server is up", or without -o that the
    file was a stream. Each now says how to name the local file, and that name works."""
    make_test_video(tmp_path / "take1:good.mp4", frames=2, audio=False)
    assert_one_line_error(run_srpipe("upscale", "take1:good.mp4", "-o", "out.mp4", cwd=tmp_path),
                          "Protocol not found", "for the local file of that name write ./take1:good.mp4")
    done = run_srpipe("upscale", "take1:good.mp4", cwd=tmp_path)  # a URL without -o: a usage error
    assert done.returncode == 2 and b"Usage:" in done.stderr, done.stderr.decode()
    assert b"is a stream; name the output with -o; for the local file of that name write ./take1:good.mp4" \
        in done.stderr
    done = run_srpipe("upscale", "./take1:good.mp4", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert listing(tmp_path) == ["take1:good.mp4", "take1:good_x2.mp4"]


def test_a_limit_raised_past_what_ffmpeg_takes_still_decodes(tmp_path):
    """--max-pixels of a billion and more (a limit raised for huge scans, or to lift it): FFmpeg's
    decoders take at most a C int, and every file was called damaged; the quantizer srpipe reads
    to pick espcn's weights was lost the same way."""
    from srpipe.video import mean_quantizer

    clip = make_test_video(tmp_path / "clip.mp4", width=64, height=48, frames=2, audio=False)
    for limit in (1 << 30, 2**31 - 1, 10**12):
        done = run_srpipe("upscale", clip, "--max-pixels", limit, "-q", "-y")
        assert done.returncode == 0, done.stderr.decode()
        assert mean_quantizer(str(clip), limit) is not None
    assert listing(tmp_path) == ["clip.mp4", "clip_x2.mp4"]


def test_a_frame_the_probe_refuses_is_told_over_the_limit_not_damaged(tmp_path):
    """FFV1 in Matroska far over the limit: the probe's decoder refused the frame and left its size
    unknown, and the run called the file damaged (live, told to skip, showed nothing and exited 0)."""
    clip = make_test_video(tmp_path / "big.mkv", codec="ffv1", width=1100, height=1000, frames=1, audio=False)
    for command in (["upscale", clip], ["live", "--source", clip, "--no-window", "--on-decode-error", "skip"]):
        assert_one_line_error(run_srpipe(*command, "--max-pixels", 1000), "1100x1000 frames", "--max-pixels")


def test_video_growing_to_a_huge_frame_mid_stream_is_refused(tmp_path):
    """The decoder itself refuses frames over the limit: a later SPS cannot claim gigabytes."""
    small = make_test_video(tmp_path / "small.h264", width=64, height=48, frames=200, audio=False, title=None)
    huge = make_huge_claim_h264(tmp_path / "huge.h264", 16000, 16000)
    joined = tmp_path / "joined.h264"
    joined.write_bytes(small.read_bytes() + huge.read_bytes())
    done, peak = run_measured("upscale", joined, "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, "joined.h264 is damaged")
    assert peak < PEAK_LIMIT_KB
    assert not (tmp_path / "out.mkv").exists() and not [p for p in listing(tmp_path) if ".partial" in p]


def test_batch_size_search_is_immediate():
    import time

    from srpipe.memory import GIB, fit_batch_size

    class Model:
        working_bytes_per_output_pixel = 8

    started = time.monotonic()
    with pytest.warns(UserWarning, match="--batch-size lowered from 100000000 to 3"):
        assert fit_batch_size(1920, 1080, 4, 100_000_000, 1, Model(), available=2 * GIB) == 3
    assert time.monotonic() - started < 5  # a search, not a count down from 100,000,000


# 2. Outputs that are special files ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["video", "image"])
def test_dev_null_is_written_into_not_replaced(tmp_path, kind):
    source = (make_test_video(tmp_path / "clip.mp4", frames=3) if kind == "video"
              else make_test_image(tmp_path / "p.png"))
    before = os.stat(os.devnull)
    for extra in ([], ["--overwrite"]):
        done = run_srpipe("upscale", source, "-o", os.devnull, "-q", *extra)
        assert done.returncode == 0, done.stderr.decode()
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert listing(tmp_path) == [source.name]


@pytest.mark.parametrize("kind", ["video", "image"])
def test_a_device_that_refuses_writes_is_one_line(tmp_path, kind):
    source = (make_test_video(tmp_path / "clip.mp4", frames=3) if kind == "video"
              else make_test_image(tmp_path / "p.png"))
    assert_one_line_error(run_srpipe("upscale", source, "-o", "/dev/full"), "cannot write /dev/full", "No space left")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert listing(tmp_path) == [source.name]

def test_fifo_with_a_reader_gets_the_stream(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=5)
    fifo = tmp_path / "out.mkv"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    done = run_srpipe("upscale", clip, "-o", fifo, "--overwrite", "-q")
    received = reader.result()
    assert done.returncode == 0, done.stderr.decode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    got = tmp_path / "got.mkv"
    got.write_bytes(received)
    info = video_info(got)
    assert (info["width"], len(info["times"])) == (128, 5)
    assert sorted(listing(tmp_path)) == ["clip.mp4", "got.mkv", "out.mkv"]


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])  # an AVI-named FIFO was written Matroska
def test_fifo_named_for_a_seeking_container_is_refused(tmp_path, name):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    fifo = tmp_path / name
    os.mkfifo(fifo)
    assert_one_line_error(run_srpipe("upscale", clip, "-o", fifo, "--overwrite"),
                          f"{Path(name).suffix[1:]} cannot be streamed", "FIFO")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert listing(tmp_path) == ["clip.mp4", name]


@pytest.mark.parametrize("to", ["-", "/dev/null"])
def test_a_stream_output_in_a_format_that_does_not_exist_is_told_so(tmp_path, to):
    """It was told that 'bogus cannot be streamed', as if it were a format that needs seeking."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    assert_one_line_error(run_srpipe("upscale", clip, "-o", to, "--format", "bogus"),
                          "no container format 'bogus' to write to", "use --format matroska or mpegts")
    assert listing(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize("kind", ["gif", "flv", "mpeg"])
def test_formats_that_need_no_seeking_stream_to_standard_output(tmp_path, kind):
    """A GIF to standard output was refused, which FFmpeg writes in one pass."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=4, audio=False)
    done = run_srpipe("upscale", clip, "-o", "-", "--format", kind, "-q")
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "got").write_bytes(done.stdout)
    with av.open(str(tmp_path / "got"), format=kind) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_socket_output_is_refused_not_replaced(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    sock = socket.socket(socket.AF_UNIX)
    path = tmp_path / "out.mp4"
    sock.bind(str(path))
    try:
        assert_one_line_error(run_srpipe("upscale", clip, "-o", path, "--overwrite"), "out.mp4 is a socket")
        assert stat.S_ISSOCK(path.lstat().st_mode)
    finally:
        sock.close()
    assert listing(tmp_path) == ["clip.mp4", "out.mp4"]


def test_link_to_a_file_replaces_the_target_and_keeps_the_link(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    target = tmp_path / "target.mp4"
    target.write_bytes(b"old")
    link = tmp_path / "link.mp4"
    link.symlink_to(target.name)
    assert_one_line_error(run_srpipe("upscale", clip, "-o", link), "already exists", "--overwrite")
    assert target.read_bytes() == b"old"
    done = run_srpipe("upscale", clip, "-o", link, "--overwrite", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert link.is_symlink() and os.readlink(link) == "target.mp4"
    assert len(video_info(target)["times"]) == 3
    assert listing(tmp_path) == ["clip.mp4", "link.mp4", "target.mp4"]


def test_dangling_link_is_refused(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "link.mp4").symlink_to("nowhere.mp4")
    assert_one_line_error(run_srpipe("upscale", clip, "-o", tmp_path / "link.mp4", "--overwrite"),
                          "link to a missing file")
    assert listing(tmp_path) == ["clip.mp4", "link.mp4"]


# 3. Stalls and interrupts ------------------------------------------------------------------


def stalling_server(payload: bytes = b"", seconds: float = 20.0) -> int:
    """A server on 127.0.0.1 that accepts, sends ``payload`` (after the request) and then
    nothing; it stops by itself after ``seconds``. Returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(seconds)

    def serve():
        held, end = [], time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                connection, _ = server.accept()
                held.append(connection)
                if payload:
                    connection.recv(65536)
                    connection.sendall(payload)
        except OSError:
            pass
        finally:
            time.sleep(max(0.0, end - time.monotonic()))
            for connection in held:
                connection.close()
            server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def http_payload(clip, fraction: float, say_length: bool = False) -> bytes:
    """A response with the first ``fraction`` of ``clip``, and with the whole clip's length where ``say_length``."""
    data = clip.read_bytes()
    length = f"Content-Length: {len(data)}\r\n".encode() if say_length else b""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: video/x-matroska\r\n" + length + b"\r\n"
    return head + data[: int(len(data) * fraction)]


def start_srpipe(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "srpipe", *map(str, args)], stderr=subprocess.PIPE,
                            cwd=cwd, preexec_fn=default_sigint)


def closing_server(payload: bytes) -> int:
    """A server on 127.0.0.1 that sends ``payload`` to one request and closes the connection, as
    servers of live streams do that say no Content-Length. Returns its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(30)

    def serve():
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def test_a_stream_the_server_closes_without_a_length_ends_there(tmp_path):
    """FFmpeg reads the close as an input/output error: it was 'unexpected OSError' and no output."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=20)
    port = closing_server(http_payload(clip, 1.0))
    url = f"http://127.0.0.1:{port}/clip.mkv"
    done = run_srpipe("upscale", url, "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().startswith(f"Warning: {url} ended in an input/output error")
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 20


def test_a_recording_the_server_closes_early_without_a_length_is_told_once(tmp_path):
    """The server said no length, but the file's header states its end: a warning that the frames
    that arrived are upscaled came, then an error that the file is damaged and lost frames."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=60)
    port = closing_server(http_payload(clip, 0.5))
    url = f"http://127.0.0.1:{port}/clip.mkv"
    assert_one_line_error(run_srpipe("upscale", url, "-o", tmp_path / "out.mkv"), f"{url} broke off",
                          "before the end its header states", "--on-decode-error skip")
    assert "Warning" not in run_srpipe("upscale", url.replace(str(port), str(closing_server(http_payload(clip, 0.5)))),
                                       "-o", tmp_path / "out.mkv").stderr.decode()
    assert os.listdir(tmp_path) == ["clip.mkv"]


def test_a_stream_that_breaks_off_before_the_length_it_said_is_one_line(tmp_path):
    """It was taken for a stream without a length (a warning), then for a damaged file that lost frames."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=60)
    port = closing_server(http_payload(clip, 0.5, say_length=True))
    url = f"http://127.0.0.1:{port}/clip.mkv"
    assert_one_line_error(run_srpipe("upscale", url, "-o", tmp_path / "out.mkv"),
                          f"{url} broke off", f"said {clip.stat().st_size} bytes", "try again")
    assert os.listdir(tmp_path) == ["clip.mkv"]
    port = closing_server(http_payload(clip, 0.5, say_length=True))
    url = f"http://127.0.0.1:{port}/clip.mkv"
    done = run_srpipe("upscale", url, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().startswith(f"Warning: {url} broke off")
    kept = len(video_info(tmp_path / "out.mkv")["times"])
    assert 0 < kept < 60 and f"{60 - kept} damaged frames of {url} were skipped" in done.stderr.decode()


def test_a_stream_of_unknown_duration_that_breaks_off_before_the_length_it_said_is_one_line(tmp_path):
    """MPEG-TS from a server that does not seek has no duration: the break-off was taken for the end
    of a stream that said no length, and half the frames were upscaled with exit 0."""
    clip = make_test_video(tmp_path / "clip.ts", frames=60, audio=False)
    port = closing_server(http_payload(clip, 0.5, say_length=True))
    url = f"http://127.0.0.1:{port}/clip.ts"
    assert_one_line_error(run_srpipe("upscale", url, "-o", tmp_path / "out.mkv"),
                          f"{url} broke off", f"said {clip.stat().st_size} bytes", "try again")
    assert os.listdir(tmp_path) == [clip.name]


@pytest.mark.parametrize("via, share", [("stdin", 0.5), ("fifo", 0.5), ("stdin", 0.0)])
def test_a_stalled_pipe_times_out_with_timeout(tmp_path, via, share):
    """FFmpeg does not ask its interrupt callback while a pipe read blocks: --timeout was ignored there."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=100)
    data = clip.read_bytes()
    args = ["-m", "srpipe", "upscale", "-" if via == "stdin" else str(tmp_path / "in.fifo"),
            "-o", str(tmp_path / "out.mkv"), "--timeout", "1"]
    if via == "fifo":
        os.mkfifo(tmp_path / "in.fifo")
        args += ["--input-format", "matroska"]
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE if via == "stdin" else None,
                               stderr=subprocess.PIPE)
    writer = process.stdin if via == "stdin" else open_fifo(tmp_path / "in.fifo", "wb", process)
    writer.write(data[: int(len(data) * share)])  # and then nothing, the pipe held open
    writer.flush()
    process.wait(timeout=60)
    stderr = process.stderr.read()
    writer.close()
    assert time.monotonic() - started < 30
    assert process.returncode == 1
    where = "-" if via == "stdin" else tmp_path / "in.fifo"
    assert stderr.decode() == f"Error: {where} sent no data for 1 s; check the source, or allow longer with " \
                              "--timeout SECONDS\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["clip.mkv", *(["in.fifo"] if via == "fifo" else [])])
    done = run_srpipe("upscale", "-", "-o", tmp_path / "whole.mkv", "--timeout", "5", input=data)
    assert done.returncode == 0, done.stderr.decode()  # a pipe that keeps sending is read to its end


def test_a_fifo_that_nobody_writes_times_out_with_timeout(tmp_path):
    """Its open waited for a writer, before --timeout began: srpipe waited for ever."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(fifo), "-o", str(tmp_path / "out.mkv"),
                           "--timeout", "1"], capture_output=True, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert done.stderr.decode() == f"Error: {fifo} sent no data for 1 s; check the source, or allow longer with " \
                                   "--timeout SECONDS\n"
    assert os.listdir(tmp_path) == ["in.fifo"]


def test_a_file_redirected_into_standard_input_is_still_read_as_a_file_with_timeout(tmp_path):
    """An MP4 whose index is at its end needs seeking: a file redirected into standard input may be."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=10)
    with open(clip, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", "-", "-o", tmp_path / "out.mkv",
                               "--timeout", "5", "-q"], stdin=stdin, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 10


@pytest.mark.parametrize("stage", ["open", "read"])
def test_stalled_server_times_out(tmp_path, stage):
    clip = make_test_video(tmp_path / "clip.mkv", frames=200)
    port = stalling_server(b"" if stage == "open" else http_payload(clip, 0.7))
    started = time.monotonic()
    done = run_srpipe("upscale", f"http://127.0.0.1:{port}/clip.mkv", "-o", tmp_path / "out.mkv", "--timeout", "1")
    assert time.monotonic() - started < 15
    assert_one_line_error(done, f"http://127.0.0.1:{port}/clip.mkv sent no data for 1 s", "--timeout")
    assert listing(tmp_path) == ["clip.mkv"]


def test_a_udp_stream_ends_when_its_sender_stops(tmp_path):
    """UDP says nothing when it ends: a silence of --timeout is its end. The upscale failed there
    ('sent no data for 2 s') and threw away every frame that had arrived, whoever started first."""
    import socket

    data = make_test_video(tmp_path / "clip.ts", frames=30, audio=False).read_bytes()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_srpipe("upscale", f"udp://127.0.0.1:{port}", "-m", "bicubic", "-o", tmp_path / "out.mkv",
                           "--timeout", "2")
    bound = f":{port:04X} "  # srpipe listening: its socket in the kernel's table (what arrives before is lost)
    wait_for(lambda: any(bound in line.split()[1] + " " for line in Path("/proc/net/udp").read_text().splitlines()[1:]),
             process)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for at in range(0, len(data), 1316):  # MPEG-TS over UDP: 7 packets a datagram
            sender.sendto(data[at:at + 1316], ("127.0.0.1", port))
            time.sleep(0.002)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert f"Warning: udp://127.0.0.1:{port} sent no data for 2 s and ended there" in stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 30


@pytest.mark.parametrize("stage", ["open", "read"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_a_stalled_run_within_seconds(tmp_path, stage, signum, code):
    clip = make_test_video(tmp_path / "clip.mkv", frames=200)
    port = stalling_server(b"" if stage == "open" else http_payload(clip, 0.7))
    process = start_srpipe("upscale", f"http://127.0.0.1:{port}/clip.mkv", "-o", tmp_path / "out.mkv")
    wait_until_blocked(process)  # the default network timeout is 30 s: the run is stalled, not failed
    process.send_signal(signum)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 5, stderr  # not the 30 s of the network's timeout, or forever
    assert process.returncode == code, stderr
    assert listing(tmp_path) == ["clip.mkv"]


@pytest.mark.parametrize("side", ["input", "output", "reader that never reads"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_a_wait_for_the_other_end_of_a_fifo(tmp_path, side, signum, code):
    clip = make_test_video(tmp_path / "clip.mp4", width=320, height=240, frames=60)
    fifo = tmp_path / "pipe.mkv"
    os.mkfifo(fifo)
    args = (fifo, "-o", tmp_path / "out.mkv") if side == "input" else (clip, "-o", fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK) if side.startswith("reader") else None
    try:
        process = start_srpipe("upscale", *args)
        wait_until_blocked(process)  # opening (no other end) or writing (the pipe is full) blocks
        process.send_signal(signum)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=30)
    finally:
        if reader is not None:
            os.close(reader)
    assert time.monotonic() - started < 5, stderr  # not the 30 s of the network's timeout, or forever
    assert process.returncode == code, stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert listing(tmp_path) == ["clip.mp4", "pipe.mkv"]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_a_run_whose_stdout_reader_stopped_reading(tmp_path, signum, code):
    clip = make_test_video(tmp_path / "clip.mp4", width=320, height=240, frames=60)
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen([sys.executable, "-m", "srpipe", "upscale", str(clip), "-o", "-", "-q"],
                                   stdout=write_end, stderr=subprocess.PIPE, preexec_fn=default_sigint)
        os.close(write_end)
        wait_until_blocked(process)  # the pipe is full: srpipe waits in a write
        process.send_signal(signum)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=30)
    finally:
        os.close(read_end)
    assert time.monotonic() - started < 5, stderr  # not the 30 s of the network's timeout, or forever
    assert process.returncode == code, stderr
    assert listing(tmp_path) == ["clip.mp4"]

# 4. Batch inputs that are not regular files ------------------------------------------------


def test_batch_skips_fifos_sockets_and_devices_with_a_message(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_test_video(src / "clip.mp4", frames=3)
    os.mkfifo(src / "fifo.mp4")
    (src / "zero.mkv").symlink_to("/dev/zero")
    (src / "gone.mp4").symlink_to("nowhere.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock.mp4"))
    try:
        done = subprocess.run([sys.executable, "-m", "srpipe", "batch", str(src), str(out)],
                              capture_output=True, timeout=120)
    finally:
        sock.close()
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "skipped  fifo.mp4 (a FIFO, not a regular file)" in stderr
    assert "skipped  sock.mp4 (a socket, not a regular file)" in stderr
    assert "skipped  zero.mkv (a character device, not a regular file)" in stderr
    assert "skipped  gone.mp4 (a link to nothing, not a regular file)" in stderr
    assert "1 done, 4 skipped, 0 failed" in stderr
    assert listing(out) == [".srpipe-batch.json", "clip.mp4"]
    assert stat.S_ISFIFO((src / "fifo.mp4").lstat().st_mode)


# 5-6. Partial outputs of killed runs and of concurrent batches ------------------------------

def slow_env(tmp_path):
    from plugin_helpers import SLOW_PLUGIN, fake_plugin

    site = fake_plugin(tmp_path / "site", "slow_plugin", SLOW_PLUGIN)
    return {**os.environ, "PYTHONPATH": str(site)}


def partials(folder):
    return sorted(name for name in os.listdir(folder) if ".partial" in name)


def test_a_later_run_removes_a_killed_runs_partial_but_no_other(tmp_path):
    env = slow_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    clip = make_test_video(work / "clip.mp4", frames=40)
    mine = [".clip_x2.mine.partial.mp4", "notes.partial.txt"]
    for name in mine:
        (work / name).write_bytes(b"the user's own")
    alive = f".clip_x2.srpipe-{_HOST}-{os.getpid()}-abc.partial.mp4"  # a live process's (this test's)
    (work / alive).write_bytes(b"in progress elsewhere")
    command = [sys.executable, "-m", "srpipe", "upscale", str(clip), "-m", "slow", "--batch-size", "1", "-q"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    wait_for(lambda: len(partials(work)) == 4, process)
    leftover = next(name for name in partials(work) if name not in mine and name != alive)
    assert f"srpipe-{_HOST}-{process.pid}-" in leftover  # the owner is in the name
    process.kill()
    process.communicate(timeout=30)
    assert leftover in listing(work)  # SIGKILL: nothing can clean up
    done = subprocess.run(command, env={**env, "SRPIPE_TEST_SLOW_SECONDS": "0"}, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert partials(work) == sorted([*mine, alive])
    assert len(video_info(work / "clip_x2.mp4")["times"]) == 40


def test_a_second_batch_into_the_same_folder_is_refused_and_touches_nothing(tmp_path):
    env = slow_env(tmp_path)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    make_test_video(inputs / "a.mp4", frames=20, audio=False)
    (out / ".a.mine.partial.mp4").write_bytes(b"the user's own")
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "--batch-size", "1", "-q"]
    # 10 s of frames: the second's start-up, on busy cores too, comes long before the first ends
    first = subprocess.Popen(command, env={**env, "SRPIPE_TEST_SLOW_SECONDS": "0.5"}, stderr=subprocess.PIPE)
    wait_for(lambda: len(partials(out)) == 2, first)
    before = partials(out)
    second = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert_one_line_error(second, "another srpipe batch is writing into", "wait for it")
    assert partials(out) == before
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr.decode()
    assert listing(out) == [".a.mine.partial.mp4", ".srpipe-batch.json", "a.mp4"]


# 7. An input rewritten while a batch reads it ------------------------------------------------

TOUCHING_PLUGIN = '''
import json
import os
from srpipe import hookimpl
from srpipe.models import ModelSpec


class Touching:
    """Rewrites the file named in SRPIPE_TEST_REWRITE on its first call: an input changing
    while it is read, made deterministic."""
    scale = 2
    calls = 0

    def upscale(self, luma, *, bit_depth, full_range):
        Touching.calls += 1
        path = os.environ.get("SRPIPE_TEST_REWRITE")
        if path and Touching.calls == 1:
            with open(path, "ab") as file:
                file.write(b"appended while srpipe reads it")
        return luma.repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    register(ModelSpec(name="touching", scales=(2,), description="rewrites its input", load=lambda **kw: Touching()))
'''


def test_input_rewritten_during_a_batch_fails_and_is_redone_next_time(tmp_path):
    from plugin_helpers import fake_plugin

    site = fake_plugin(tmp_path / "site", "touching_plugin", TOUCHING_PLUGIN)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_video(inputs / "a.mp4", frames=6)
    make_test_video(inputs / "b.mp4", frames=6)
    command = ["batch", inputs, out, "-m", "touching", "--batch-size", "2"]
    env = {"PYTHONPATH": str(site), "SRPIPE_TEST_REWRITE": str(inputs / "a.mp4")}
    done = run_srpipe(*command, env=env)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "FAILED   a.mp4: a.mp4 changed while it was read; its output was removed" in stderr
    assert listing(out) == [".srpipe-batch.json", "b.mp4"]
    done = run_srpipe(*command, "--json", env={"PYTHONPATH": str(site)})
    report = json.loads(done.stdout)
    assert (report["done"], report["skipped"], report["failed"]) == (1, 1, 0), done.stderr.decode()
    assert listing(out) == [".srpipe-batch.json", "a.mp4", "b.mp4"]


# 8-9. Broken and hostile checkpoints ----------------------------------------------------------


def espcn_checkpoint(path, change=None, **config):
    import torch

    from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
    from srpipe.nn.checkpoint import make_checkpoint, save_checkpoint

    net = ESPCN(ESPCNConfig(**{"scale": 2, "features": (4,), "kernels": (3, 3), **config}))
    ckpt = make_checkpoint(net, {})
    if change:
        with torch.no_grad():
            change(ckpt)
    save_checkpoint(ckpt, path)
    return path


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_weights_are_refused_at_load(tmp_path, value):
    def poison(ckpt):
        next(iter(ckpt["state_dict"].values())).view(-1)[0] = float(value)

    weights = espcn_checkpoint(tmp_path / "bad.pt", poison)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--weights", weights, "--backend", "torch")
    assert_one_line_error(done, "bad.pt holds NaN or infinite weights", "not loaded")
    assert listing(tmp_path) == ["bad.pt", "clip.mp4"]


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_a_network_that_computes_nan_is_refused_not_encoded_black(tmp_path, backend):
    def overflow(ckpt):  # finite weights whose products overflow float32: inf, then inf - inf = NaN
        for tensor in ckpt["state_dict"].values():
            tensor.fill_(1e30)

    weights = espcn_checkpoint(tmp_path / "huge.pt", overflow, activation="relu")
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--weights", weights, "--backend", backend,
                      env={"SRPIPE_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(done, f"model 'espcn' is broken on backend {backend}", "NaN or infinite")
    assert [name for name in listing(tmp_path) if name != "cache"] == ["clip.mp4", "huge.pt"]


def test_checkpoint_that_inflates_is_refused_before_loading(tmp_path):
    import zipfile

    weights = espcn_checkpoint(tmp_path / "ok.pt")
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(weights) as good, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bad:
        for member in good.infolist():
            bad.writestr(member.filename, good.read(member))
        prefix = good.infolist()[0].filename.split("/")[0]
        with bad.open(f"{prefix}/data/999", "w", force_zip64=True) as big:
            chunk = bytes(1 << 20)
            for _ in range(512):  # 512 MiB of zeros, a few hundred KB deflated
                big.write(chunk)
    assert bomb.stat().st_size < 5_000_000
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done, peak = run_measured("upscale", clip, "-m", "espcn", "--weights", bomb, "--backend", "torch")
    assert_one_line_error(done, "bomb.pt unpacks to", "not loaded")
    assert peak < PEAK_LIMIT_KB


@pytest.mark.parametrize("config, needle", [
    ({"kernels": (3001, 3)}, "kernel sizes must be 1-15"),
    ({"features": (100000,)}, "widths 1-1024"),
    ({"scale": 64}, "scale must be 1-8"),
])
def test_checkpoint_config_out_of_bounds_is_refused_before_building(tmp_path, config, needle):
    def claim(ckpt):
        ckpt["config"].update({k: list(v) if isinstance(v, tuple) else v for k, v in config.items()})

    weights = espcn_checkpoint(tmp_path / "odd.pt", claim)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done, peak = run_measured("upscale", clip, "-m", "espcn", "--weights", weights, "--backend", "torch")
    assert_one_line_error(done, "odd.pt does not match its architecture", needle)
    assert peak < PEAK_LIMIT_KB


def test_checkpoint_config_disagreeing_with_its_weights_allocates_nothing(tmp_path):
    def claim(ckpt):
        ckpt["config"]["features"] = [1024] * 30  # in bounds, but not these weights: refused on the meta device
        ckpt["config"]["kernels"] = [15] * 31

    weights = espcn_checkpoint(tmp_path / "odd.pt", claim)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done, peak = run_measured("upscale", clip, "-m", "espcn", "--weights", weights, "--backend", "torch")
    assert_one_line_error(done, "odd.pt does not match its architecture", "disagree")
    assert peak < PEAK_LIMIT_KB  # the network it describes would take 28 GB


# 10. A container damaged in the middle ---------------------------------------------------------


def damage_bytes(source, target, start: float, end: float):
    data = bytearray(source.read_bytes())
    for i in range(int(len(data) * start), int(len(data) * end)):
        data[i] = (data[i] * 7 + 13) & 0xFF
    target.write_bytes(data)
    return target


def test_matroska_damaged_in_the_middle_stops_saying_what_was_lost(tmp_path):
    clip = make_test_video(tmp_path / "clip.mkv", frames=20)
    bad = damage_bytes(clip, tmp_path / "bad.mkv", 0.3, 0.6)
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, "bad.mkv is damaged", "lost about 14 video frames", "--on-decode-error skip")
    with av.open(str(bad)) as container:  # what is left: the frames before the damage, at 25 a second
        times = sorted(float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None)
    assert f"lost about 14 video frames, the first at {times[-1] + 0.04:.3f} s, that" in done.stderr.decode()
    assert listing(tmp_path) == ["bad.mkv", "clip.mkv"]


def test_matroska_damaged_in_the_middle_is_counted_when_skipping(tmp_path):
    clip = make_test_video(tmp_path / "clip.mkv", frames=20)
    bad = damage_bytes(clip, tmp_path / "bad.mkv", 0.3, 0.6)
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "Warning: 14 damaged frames of" in done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 6


def test_matroska_damaged_only_in_the_middle_is_told_too(tmp_path):
    """The demuxer skips the damaged clusters without a word and goes on: the bytes it skipped
    tell it from frames left out on purpose (tests/core/test_faults.py)."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=100, codec_options={"preset": "ultrafast", "g": "10"})
    bad = damage_bytes(clip, tmp_path / "bad.mkv", 0.4, 0.45)
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, "bad.mkv is damaged", "lost about", "--on-decode-error skip")
    with av.open(str(bad)) as container:
        times = sorted(float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None)
    hole = max(zip(times, times[1:]), key=lambda pair: pair[1] - pair[0])
    assert f", the first at {hole[0] + 0.04:.3f} s, that" in done.stderr.decode()
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    skipped = int(re.search(r"Warning: (\d+) damaged frames", done.stderr.decode())[1])
    assert done.returncode == 0 and skipped > 0
    assert len(video_info(tmp_path / "out.mkv")["times"]) + skipped == 100


def test_mpegts_damaged_in_the_middle_counts_every_lost_frame(tmp_path):
    clip = make_test_video(tmp_path / "clip.ts", frames=20, audio=False)  # the damage on video packets
    bad = damage_bytes(clip, tmp_path / "bad.ts", 0.3, 0.6)
    assert_one_line_error(run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv"), "bad.ts is damaged", "lost about")
    assert listing(tmp_path) == ["bad.ts", "clip.ts"]
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    assert done.returncode == 0, done.stderr.decode()
    skipped = int(re.search(r"Warning: (\d+) damaged frames", done.stderr.decode())[1])
    assert skipped > 0 and len(video_info(tmp_path / "out.mkv")["times"]) + skipped == 20


@pytest.mark.parametrize("lost_packets", [150, 160])  # 160: a multiple of 16, which continuity counters miss
@pytest.mark.parametrize("where", [0.2, 0.3, 0.5, 0.7])
def test_mpegts_packets_lost_in_transit_are_all_counted(tmp_path, lost_packets, where):
    """Whole 188-byte packets lost (a broadcast's or a network's loss): every frame of the source is
    in the output or counted, whether its packets went missing or gave no picture after the loss."""
    clip = make_test_video(tmp_path / "clip.ts", width=320, height=180, frames=60, rate=30, audio=False)
    data = clip.read_bytes()
    cut = int(len(data) // 188 * where) * 188
    bad = tmp_path / "bad.ts"
    bad.write_bytes(data[:cut] + data[cut + lost_packets * 188:])
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip", "-q")
    said = done.stderr.decode()
    assert done.returncode == 0, said
    skipped = re.search(r"Warning: (\d+) damaged frames? of", said)
    frameless = re.search(r"Warning: (\d+) packets? of .* gave no picture", said)
    counted = sum(int(found[1]) for found in (skipped, frameless) if found)
    shown = len(video_info(tmp_path / "out.mkv")["times"])
    assert shown < 60 and shown + counted == 60, said


def test_a_phones_dropped_frames_beside_a_mended_frame_are_no_loss(tmp_path):
    """An MP4's index loses no packet without a word: its gaps are frames left out on purpose,
    whatever the decoder met elsewhere (it was 'damaged: its container lost about 4 video frames')."""
    times = list(range(30)) + list(range(34, 60))  # four frames the phone dropped
    clip = make_test_video(tmp_path / "clip.mp4", frames=56, pts=times, audio=False, width=160, height=120,
                           codec_options={"preset": "ultrafast", "bf": "0", "g": "60"})
    bad = damage_video(clip, tmp_path / "bad.mp4", frames=(45,))
    done = run_srpipe("upscale", bad, "-o", tmp_path / "out.mkv", "--on-decode-error", "skip")
    said = done.stderr.decode()
    assert done.returncode == 0 and "Warning: 1 damaged frame of" in said, said
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 55


def test_a_live_stream_with_a_made_up_length_ends_where_the_server_closes_it(tmp_path):
    """Some cameras send Content-Length 2^31 - 1 on a live MPEG-TS stream, which has no duration:
    where it closes, the stream ends, as one that said no length."""
    clip = make_test_video(tmp_path / "clip.ts", frames=40, audio=False)
    head = b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 2147483647\r\n\r\n"
    port = closing_server(head + clip.read_bytes())
    url = f"http://127.0.0.1:{port}/live.ts"
    done = run_srpipe("upscale", url, "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().startswith(f"Warning: {url} ended in an input/output error")
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 40


def test_mp4_cut_short_says_frames_were_lost(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=20)
    fast = tmp_path / "fast.mp4"  # the index first, as streaming sites write it: a cut file still opens
    with av.open(str(clip)) as source, av.open(str(fast), "w", options={"movflags": "+faststart"}) as remuxed:
        streams = {stream.index: remuxed.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:  # not the empty packet that ends each stream
                packet.stream = streams[packet.stream.index]
                remuxed.mux(packet)
    data = fast.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert_one_line_error(run_srpipe("upscale", cut, "-o", tmp_path / "out.mp4"), "cut.mp4 is damaged", "lost about")
    assert listing(tmp_path) == ["clip.mp4", "cut.mp4", "fast.mp4"]

def test_an_mp4_cut_anywhere_gives_its_frames_or_one_line(tmp_path, cli_run):
    """Cut through its index (written last), a stream can be left with no codec: a cut audio
    stream stops the run with a line that says so, rather than an unexpected error."""
    data = make_test_video(tmp_path / "clip.mp4", frames=12).read_bytes()
    cut, out = tmp_path / "cut.mp4", tmp_path / "out.mp4"
    for fraction in np.r_[np.linspace(0.05, 0.9, 18), np.linspace(0.9, 0.999, 60)]:  # the index: the last tenth
        cut.write_bytes(data[:int(len(data) * fraction)])
        result = cli_run("upscale", cut, "-o", out, "-m", "bicubic", "-y")
        lines = result.output.strip().splitlines()
        if result.exit_code:
            assert len(lines) == 1 and lines[0].startswith("Error: ") and "unexpected" not in lines[0], \
                (fraction, result.output)
        assert not [name for name in listing(tmp_path) if name not in ("clip.mp4", "cut.mp4", "out.mp4")]


@pytest.mark.parametrize("name", ["clip.mkv", "clip.mp4", "clip.webm"])
def test_intact_files_are_not_called_damaged(tmp_path, name):
    clip = make_test_video(tmp_path / name, frames=20, codec="libvpx-vp9" if name.endswith("webm") else "libx264",
                           audio=not name.endswith("webm"))
    done = run_srpipe("upscale", clip, "-q")
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()


@pytest.mark.parametrize("rate, frames, sound_seconds", [(30, 30, 3.0), (60, 60, 1.0), (25, 50, 2.0)])
def test_a_wmv_whose_sound_runs_on_or_whose_times_are_rounded_is_not_called_damaged(tmp_path, rate, frames,
                                                                                     sound_seconds):
    """ASF's header gives each stream the file's play time: the video's end is not stated apart."""
    clip = make_wmv(tmp_path / "clip.wmv", rate, frames, sound_seconds)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.wmv", "-q")
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    assert len(video_info(tmp_path / "out.wmv")["times"]) == frames


# 11. Frames from a plugin source are checked like model output -------------------------------


def plugin_source_run(tmp_path, frames):
    from srpipe.frames import PLANE_FORMATS, Frame

    made = (Frame(tuple(planes), PLANE_FORMATS[fmt], False, pts, Fraction(1, 25) if pts is not None else None)
            for planes, fmt, pts in frames)
    return upscale_plugin_frames(made, tmp_path / "out.mkv")


def planes420(value=16):
    return [np.full((16, 16), value, np.uint8), np.full((8, 8), 128, np.uint8), np.full((8, 8), 128, np.uint8)]


@pytest.mark.parametrize("frames, needle", [
    ([(planes420(), "yuv420p", 0), (planes420(), "yuv420p", None)], "timestamp None after 0"),
    ([(planes420(), "yuv420p", 0), (planes420(), "yuv420p", 0)], "timestamp 0 after 0"),
    ([(planes420(), "yuv420p", 1), (planes420(), "yuv420p", 0)], "timestamp 0 after 1"),
    ([(planes420()[:1], "yuv420p", 0)], "yuv420p frame of 1 planes instead of 3"),
    ([(planes420()[:2] + [np.zeros((16, 16), np.uint8)], "yuv420p", 0)], "plane 2 is uint8 (16, 16), not uint8 (8, 8)"),
    ([(planes420(), "yuv420p10le", 0)], "plane 0 is uint8 (16, 16), not uint16 (16, 16)"),
])
def test_malformed_frames_from_a_plugin_source_are_refused(tmp_path, frames, needle):
    named = "source Listed (listed://frames) of plugin 'listed' (unknown version) gave"
    with pytest.raises(SrpipeError, match=re.escape(named)) as caught:
        plugin_source_run(tmp_path, frames)
    assert needle in str(caught.value) and "plugin that reads it is broken" in str(caught.value)
    assert listing(tmp_path) == []


def test_plugin_source_without_timestamps_is_timed_by_the_frame_rate(tmp_path):
    result = plugin_source_run(tmp_path, [(planes420(v), "yuv420p", None) for v in (16, 60, 120)])
    assert result.stats.frames_out == 3
    assert video_info(tmp_path / "out.mkv")["times"] == [Fraction(0), Fraction(1, 25), Fraction(2, 25)]


def test_matroska_without_timestamps_is_timed_by_the_frame_rate(tmp_path):
    source = make_test_video(tmp_path / "clip.mkv", frames=10, audio=False)
    flat = tmp_path / "flat.mkv"
    with av.open(str(source)) as inp, av.open(str(flat), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux():
            if packet.dts is not None:
                packet.pts = packet.dts = 0  # every timestamp the same
                packet.stream = stream
                out.mux(packet)
    done = run_srpipe("upscale", flat, "-o", tmp_path / "out.mkv")
    assert done.returncode == 0, done.stderr.decode()
    assert "Warning: 9 frames of " in done.stderr.decode() and "timed by the frame rate" in done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 10


# 12. Internal messages must not leak ---------------------------------------------------------


def test_closed_standard_input_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "srpipe", "upscale", "-", "-o", str(tmp_path / "out.mkv")],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                          preexec_fn=lambda: os.close(0))
    assert_one_line_error(done, "standard input is closed")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("codec, needle", [("aac", "--codec aac is an audio encoder"),
                                           ("nosuchcodec", "--codec nosuchcodec is not an encoder")])
def test_codec_that_is_no_video_encoder_is_named(tmp_path, codec, needle):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    assert_one_line_error(run_srpipe("upscale", clip, "--codec", codec), needle)
    assert listing(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_image_too_wide_for_its_format_is_one_line(tmp_path, suffix):
    image = make_test_image(tmp_path / "wide.png", width=40000, height=4)
    done = run_srpipe("upscale", image, "-o", tmp_path / f"wide{suffix}")
    assert_one_line_error(done, "cannot encode", "80000x8", "use .png")
    assert not done.stdout and listing(tmp_path) == ["wide.png"]


def test_unexpected_errors_are_one_line():
    from srpipe.cli import one_line

    assert one_line("OpenCV(4.9) x.cpp:1: error: (-215:Assertion failed)\n  in function 'imencode'\n") == \
        "OpenCV(4.9) x.cpp:1: error: (-215:Assertion failed) in function 'imencode'"


# 13. Smaller defects ---------------------------------------------------------------------------


@pytest.mark.parametrize("crf, code, needle", [("999", 2, "999 is not in the range"),
                                               ("60", 1, "--crf 60 is out of range for libx264")])
def test_crf_out_of_range_is_refused_not_clamped(tmp_path, crf, code, needle):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done = run_srpipe("upscale", clip, "--crf", crf)
    assert done.returncode == code and needle in done.stderr.decode(), done.stderr.decode()
    assert listing(tmp_path) == ["clip.mp4"]


def test_weights_of_another_scale_than_the_model_name_are_refused(tmp_path):
    """Refused with "--scale 2 was asked for" where no --scale was given: -m espcn-x2 asked for it."""
    weights = espcn_checkpoint(tmp_path / "x3.pt", scale=3)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    said = ("x3.pt is an x3 model, and x2 was asked for (by -s or the model's name); run it with -m espcn -s 3, or "
            "give x2 weights")
    done = run_srpipe("upscale", clip, "-m", "espcn-x2", "--weights", weights, "--backend", "torch")
    assert_one_line_error(done, said)
    assert listing(tmp_path) == ["clip.mp4", "x3.pt"]
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    make_test_image(pictures / "a.png", width=32, height=32)
    assert_one_line_error(run_srpipe("eval", "-m", "espcn-x2", "--data", pictures, "--weights", weights), said)
    done = run_srpipe("upscale", clip, "-m", "espcn", "-s", "3", "--weights", weights, "--backend", "torch", "-q")
    assert done.returncode == 0, done.stderr.decode()  # what it says to do


def test_a_reader_that_leaves_early_ends_srpipe_quietly():
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "plugins"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # as `srpipe plugins | head -0` would
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


def test_debug_is_accepted_after_the_subcommand(tmp_path):
    done = run_srpipe("upscale", tmp_path / "missing.mp4", "--debug")
    assert done.returncode == 1
    assert b"Traceback" in done.stderr and b"missing.mp4 does not exist" in done.stderr
    done = run_srpipe("upscale", "--", "--debug")  # after --, a file name
    assert_one_line_error(done, "--debug does not exist")


def test_unknown_plugin_names_in_the_switches_are_warned_about():
    done = run_srpipe("models", "list", env={"SRPIPE_DISABLE_PLUGINS": "srpipe_plugins.clasic"})
    assert done.returncode == 0
    assert b"Warning: SRPIPE_DISABLE_PLUGINS names 'srpipe_plugins.clasic', which is no installed plugin" in done.stderr
    assert b"bicubic" in done.stdout


def test_one_bad_register_call_keeps_the_plugins_other_models(tmp_path):
    from test_plugins import models_with

    from plugin_helpers import fake_plugin

    source = '''from srpipe import hookimpl
from srpipe.models import ModelSpec


@hookimpl
def register_models(register):
    register("not a model")
    register(ModelSpec(name="bicubic", scales=(2,), description="taken", load=lambda **kw: None))
    register(ModelSpec(name="still-here", scales=(2,), description="good", load=lambda **kw: None))
'''
    models, stderr = models_with(fake_plugin(tmp_path / "site", "half_bad", source))
    assert "still-here" in models and models["bicubic"]["plugin"] == "srpipe.default_plugins.classic"
    assert stderr.count("plugin 'half_bad' failed in register_models for one entry, which is skipped") == 2


BRIGHT_PLUGIN = """
import numpy as np
from srpipe import hookimpl
from srpipe.models import ModelSpec


READ_ONLY = False


class TooBright:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        out = np.full((luma.shape[0], luma.shape[1] * 2, luma.shape[2] * 2), 4000, luma.dtype)
        out.flags.writeable = not READ_ONLY
        return out


@hookimpl
def register_models(register):
    register(ModelSpec(name="bright", scales=(2,), description="", load=lambda **kw: TooBright()))
"""


@pytest.mark.parametrize("read_only", [False, True])
def test_model_output_beyond_the_bit_depth_is_clipped_with_one_warning(tmp_path, read_only):
    """A read-only array (which docs/plugins.md does not allow, but a model may give) was
    clipped in place: the warning, then 'unexpected ValueError: output array is read-only'."""
    from plugin_helpers import fake_plugin

    site = fake_plugin(tmp_path / "site", "bright_plugin", BRIGHT_PLUGIN.replace("= False", f"= {read_only}"))
    clip = make_test_video(tmp_path / "clip.mkv", frames=6, pix_fmt="yuv420p10le", audio=False)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv", "-m", "bright", "--batch-size", "2", "-q",
                      env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().count("model 'bright' gave samples above 1023, the largest 10-bit value") == 1
    with av.open(str(tmp_path / "out.mkv")) as container:
        luma = next(container.decode(video=0)).to_ndarray(format="gray10le")
    assert luma.max() == 1023


@pytest.mark.parametrize("where", ["data", "crc"])
def test_libpng_complaints_do_not_reach_the_terminal(tmp_path, where):
    data = bytearray(make_test_image(tmp_path / "p.png").read_bytes())
    if where == "data":
        for i in range(60, 200):
            data[i] ^= 0x55
    else:
        data[-5] ^= 1  # the IEND chunk's CRC
    (tmp_path / "p.png").write_bytes(bytes(data))
    done = run_srpipe("upscale", tmp_path / "p.png", "-o", tmp_path / "out.png")
    assert_one_line_error(done, "cannot read", "p.png as an image")
    assert b"libpng error" not in done.stderr
    assert listing(tmp_path) == ["p.png"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tif"])
@pytest.mark.parametrize("mode", ["rgb", "greya"])
def test_image_size_read_from_the_header_matches_the_decoder(tmp_path, suffix, mode):
    from srpipe.images import image_size

    if suffix in (".jpg", ".bmp") and mode == "greya":
        mode = "grey"
    path = make_test_image(tmp_path / f"p{suffix}", width=37, height=23, mode=mode)
    assert image_size(str(path)) == (37, 23)


def test_jpeg_claiming_a_huge_size_is_refused_before_decoding(tmp_path):
    data = bytearray(make_test_image(tmp_path / "small.jpg", width=40, height=30).read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")  # height, width
    (tmp_path / "huge.jpg").write_bytes(bytes(data))
    done, peak = run_measured("upscale", tmp_path / "huge.jpg", "-o", tmp_path / "out.png")
    assert_one_line_error(done, "huge.jpg has 60000x60000 frames", "--max-pixels")
    assert peak < PEAK_LIMIT_KB
    assert listing(tmp_path) == ["huge.jpg", "small.jpg"]


@pytest.mark.parametrize("mode", ["rgb", "rgba"])
def test_image_memory_plan_covers_the_colour_conversion(tmp_path, mode):
    """The plan for an image is checked before decoding; it must not be far below what the run
    really takes, or a raised --max-pixels would let a picture exhaust memory. With alpha too."""
    from srpipe.images import ImageSource
    from srpipe.memory import DEFAULT_WORKING_BYTES, bytes_for_batch

    image = make_test_image(tmp_path / "p.png", width=1600, height=1200, mode=mode)
    done, peak = run_measured("upscale", image, "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    source = ImageSource(str(image))
    planned = bytes_for_batch(1600, 1200, 2, 1, source.bytes_per_sample, DEFAULT_WORKING_BYTES, video=False)
    _, baseline = run_measured("--version")  # the interpreter and libraries, without a picture
    assert planned >= 0.7 * (peak - baseline) * 1024


def test_an_mp4_piped_in_with_its_index_at_the_end_says_what_to_do(tmp_path):
    clip = Path(__file__).parents[2] / "samples" / "bigbuckbunny.mp4"  # its index (moov) last, as most MP4s
    done = run_srpipe("upscale", "-", "-o", tmp_path / "out.mkv", input=clip.read_bytes())
    assert_one_line_error(done, "cannot read - (", "an MP4 or MOV read from a pipe needs its index first "
                                                    "(ffmpeg -movflags +faststart); give the file itself")


def test_a_live_playlist_that_stops_growing_ends_with_a_warning(tmp_path):
    """FFmpeg's HLS reader takes --timeout for the end of the stream, without an error: what arrived
    is upscaled, and srpipe says that the stream stopped rather than ending as if it were whole."""
    make_test_video(tmp_path / "segment0.ts", frames=25, audio=False)
    playlist = tmp_path / "live.m3u8"  # no #EXT-X-ENDLIST: a live stream, reloaded for more segments
    playlist.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
                        "#EXTINF:1.0,\nsegment0.ts\n")
    started = time.monotonic()
    done = run_srpipe("upscale", playlist, "-o", tmp_path / "out.mkv", "--timeout", "2", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "live.m3u8 sent no data for 2 s and ended there" in done.stderr.decode()
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 25 and time.monotonic() - started < 60


def test_a_socket_given_as_input_with_timeout_is_one_line(tmp_path):
    path = tmp_path / "in.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert_one_line_error(run_srpipe("upscale", path, "-o", tmp_path / "out.mkv", "--timeout", "1"),
                              f"cannot read {path}", "pipe its data into srpipe -")
    finally:
        server.close()
    assert sorted(os.listdir(tmp_path)) == ["in.sock"]
