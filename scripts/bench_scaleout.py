"""How `srpipe batch` scales from one worker to two on one long video.

Builds a long clip from the bundled sample (looped, scaled, a keyframe every 2 s),
then times `srpipe batch` with 1 and 2 workers on the local engine and on Ray
(a local Ray cluster started by each run: its start-up is part of the time).

    .venv/bin/python scripts/bench_scaleout.py --model espcn --loops 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

REPO = Path(__file__).resolve().parent.parent


def make_long_clip(path: Path, loops: int, width: int, height: int) -> int:
    """The sample looped ``loops`` times at width x height, x264 with a keyframe every 2 s."""
    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as source:
        frames = [f.reformat(width=width, height=height, format="yuv420p") for f in source.decode(video=0)]
        rate = source.streams.video[0].average_rate
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "g": str(int(2 * rate))}
        count = 0
        for _ in range(loops):
            for frame in frames:
                frame.pts, frame.time_base = count, Fraction(1, rate)
                out.mux(stream.encode(frame))
                count += 1
        out.mux(stream.encode())
    return count


def timed_batch(in_dir: Path, out_dir: Path, args: list[str]) -> tuple[float, dict]:
    command = [sys.executable, "-m", "srpipe", "batch", str(in_dir), str(out_dir), "-q", "--json", *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="espcn")
    parser.add_argument("--loops", type=int, default=4, help="copies of the 5.3 s sample (default 4: 21 s)")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--chunk-seconds", default="4")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    configurations = {
        "local, 1 worker (whole file)": ["--jobs", "1"],
        "local, 2 workers (chunks)": ["--jobs", "2", "--chunk-seconds", args.chunk_seconds],
        "ray, 1 worker (chunks)": ["--engine", "ray", "--jobs", "1", "--chunk-seconds", args.chunk_seconds],
        "ray, 2 workers (chunks)": ["--engine", "ray", "--jobs", "2", "--chunk-seconds", args.chunk_seconds],
    }
    with tempfile.TemporaryDirectory() as scratch:
        in_dir = Path(scratch) / "in"
        in_dir.mkdir()
        frames = make_long_clip(in_dir / "long.mp4", args.loops, width, height)
        print(f"{frames} frames {width}x{height} -> x2, model {args.model}, {os.cpu_count()} cores")
        print(f"{'configuration':32} {'seconds':>8} {'fps':>6} {'speed-up':>8}")
        first = None
        for i, (name, extra) in enumerate(configurations.items()):
            seconds, report = timed_batch(in_dir, Path(scratch) / f"out{i}", ["-m", args.model, *extra])
            assert report["frames"] == frames and report["failed"] == 0, report
            first = first or seconds
            print(f"{name:32} {seconds:8.1f} {frames / seconds:6.2f} {first / seconds:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
