"""Fuzz ``srpipe upscale`` with damaged container bytes and random options (hypothesis).

Runs outside CI for a bounded time:

    .venv/bin/pip install hypothesis
    .venv/bin/python fuzz/fuzz_upscale.py --seconds 300

Properties checked on every example: the command exits 0, 1 or 2 (never a traceback);
an exit of 1 prints exactly one ``Error:`` line; the input is never modified; no
``.partial`` file is left; and a successful run writes an output whose frame count
equals the number of frames the input decodes to (with ``--on-decode-error skip``, at most that).
A failing example is printed by hypothesis, shrunk, with its bytes and arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

import av
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srpipe.cli import _one_line_warning, build_cli
from srpipe.testing import make_huge_claim_h264, make_huge_claim_png, make_test_image, make_test_video

WORK = Path(tempfile.mkdtemp(prefix="srpipe-fuzz-"))


def _damaged_middle(path: Path) -> bytes:
    """A Matroska file scrambled from 30% to 60%: the demuxer skips most frames (issue #18)."""
    data = bytearray(make_test_video(path, frames=20).read_bytes())
    for i in range(int(len(data) * 0.3), int(len(data) * 0.6)):
        data[i] = (data[i] * 7 + 13) & 0xFF
    return bytes(data)


def _flat_timestamps(path: Path) -> bytes:
    """A Matroska file whose packets all have timestamp 0 (issue #18)."""
    source = make_test_video(WORK / "flat-source.mkv", frames=6, audio=False)
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux():
            if packet.dts is not None:
                packet.pts = packet.dts = 0
                packet.stream = stream
                out.mux(packet)
    return path.read_bytes()


SEEDS = {
    "clip.mp4": make_test_video(WORK / "seed.mp4", frames=6).read_bytes(),
    "clip.mkv": make_test_video(WORK / "seed.mkv", frames=6, subtitles=True, pix_fmt="yuv422p10le").read_bytes(),
    "clip.ts": make_test_video(WORK / "seed.ts", frames=6).read_bytes(),
    "photo.png": make_test_image(WORK / "seed.png").read_bytes(),
    "photo.jpg": make_test_image(WORK / "seed.jpg").read_bytes(),
    # hostile cases of issue #18: headers claiming huge frames, container damage, no timestamps
    "huge.h264": make_huge_claim_h264(WORK / "huge.h264", 16000, 16000).read_bytes(),
    "huge.png": make_huge_claim_png(WORK / "huge.png", 12000, 12000).read_bytes(),
    "claim.png": make_huge_claim_png(WORK / "claim.png", 100000, 100000, pixels=False).read_bytes(),
    "middle.mkv": _damaged_middle(WORK / "middle.mkv"),
    "flat.mkv": _flat_timestamps(WORK / "flat.mkv"),
}
CLI = build_cli()
warnings.showwarning = _one_line_warning  # as srpipe's main() does: one "Warning:" line each


def decodable_frames(path: Path) -> int | None:
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except Exception:
        return None


mutations = st.fixed_dictionaries(
    {
        "seed": st.sampled_from(sorted(SEEDS)),
        "writes": st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12),
        "cut": st.none() | st.floats(0, 1),
        "insert": st.none() | st.tuples(st.floats(0, 1), st.binary(max_size=32)),
    }
)


def damaged(mutation) -> tuple[str, bytes]:
    """Apply a (small, printable) mutation to a seed file."""
    data = bytearray(SEEDS[mutation["seed"]])
    for where, value in mutation["writes"]:
        data[min(int(where * len(data)), len(data) - 1)] = value
    if mutation["cut"] is not None:
        data = data[: int(mutation["cut"] * len(data))]
    if mutation["insert"] is not None:
        at = int(mutation["insert"][0] * len(data))
        data[at:at] = mutation["insert"][1]
    return mutation["seed"], bytes(data)


options = st.fixed_dictionaries(
    {},
    optional={
        "--model": st.sampled_from(["bicubic", "lanczos", "nosuch", ""]),
        "--scale": st.sampled_from(["1", "2", "3", "4", "5", "-1", "x", "1.5", "3.5", "0.5", "4.5"]),
        "--width": st.sampled_from(["0", "1", "63", "65", "200"]),
        "--height": st.sampled_from(["1", "47", "150"]),
        "--batch-size": st.sampled_from(["0", "1", "3", "8"]),
        "--codec": st.sampled_from(["libx264", "ffv1", "libvpx-vp9", "nosuchcodec", "aac"]),
        "--crf": st.sampled_from(["0", "18", "51", "99", "-3"]),
        "--pix-fmt": st.sampled_from(["yuv420p", "yuv444p", "yuv420p10le", "rgb24", "bogus"]),
        "--on-decode-error": st.sampled_from(["stop", "skip"]),
        "--format": st.sampled_from(["matroska", "mpegts", "mp4", "nosuch"]),
        "--max-pixels": st.sampled_from(["1", "3072", "100000000", "0"]),
        "--timeout": st.sampled_from(["0.5", "5", "0", "-1"]),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutation=mutations, opts=options,
       output_name=st.sampled_from(["", "out.mp4", "out.mkv", "out.png", "-x y.mp4", os.devnull]))
def check_upscale(mutation, opts, output_name):
    name, data = damaged(mutation)
    folder = Path(tempfile.mkdtemp(dir=WORK))
    source = folder / name
    source.write_bytes(data)
    args = ["upscale", str(source), "-q"]
    for key, value in opts.items():
        args += [key, value]
    if output_name:
        args += ["-o", str(folder / output_name)]  # os.devnull is absolute: the folder is dropped
    result = CliRunner().invoke(CLI, args)
    try:
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
        if result.exit_code == 1:
            errors = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
            assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
        assert source.read_bytes() == data, "the input was modified"
        assert not [p for p in folder.iterdir() if ".partial" in p.name], "a partial output was left"
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null was replaced"
        if result.exit_code == 0 and source.suffix in (".mp4", ".mkv", ".ts") and opts.get("--format") != "mp4":
            written = [p for p in folder.iterdir() if p != source]
            expected = decodable_frames(source)
            if len(written) == 1 and expected is not None:
                got = decodable_frames(written[0])
                if opts.get("--on-decode-error") == "skip":
                    assert got is not None and got <= expected
                else:
                    assert got == expected, (got, expected)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    seconds = parser.parse_args().seconds
    start, rounds = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        check_upscale()
        rounds += 1
    print(f"fuzz: {rounds * 25} examples in {time.monotonic() - start:.0f} s, no failure")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
