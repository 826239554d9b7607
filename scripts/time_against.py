"""Whole-command time of this checkout against another one, taking turns (the default path:
bicubic x2 on the bundled clip, a 3-frame clip, --help). Make the other checkout with

    mkdir /tmp/base && git archive BASE_COMMIT srpipe | tar -x -C /tmp/base
    .venv/bin/python -m compileall -q /tmp/base/srpipe srpipe
    .venv/bin/python scripts/time_against.py /tmp/base --rounds 9

Both run with this virtual environment; each gets its srpipe through PYTHONPATH. Options both
understand only (--overwrite, not -y).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from srpipe.testing import make_test_video

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="a folder holding the other checkout's srpipe/")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    variants = {"base": str(Path(args.base).resolve()), "this": str(REPO)}
    with tempfile.TemporaryDirectory() as temp:
        tiny = make_test_video(Path(temp) / "tiny.mp4", width=64, height=64, frames=3)
        jobs = {"3-frame 64x64 bicubic": ["upscale", str(tiny), "-o", f"{temp}/t.mp4", "--overwrite", "-q"],
                "720p bicubic x2": ["upscale", str(REPO / "samples" / "bigbuckbunny.mp4"), "-o", f"{temp}/b.mp4",
                                    "--overwrite", "-q"],
                "--help": ["--help"]}
        wall = {(job, name): [] for job in jobs for name in variants}
        cpu = {(job, name): [] for job in jobs for name in variants}
        for round_ in range(args.rounds):
            order = list(variants.items())[:: 1 if round_ % 2 == 0 else -1]
            for job, command in jobs.items():
                for name, path in order:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "srpipe", *command], check=True, capture_output=True,
                                   env={**os.environ, "PYTHONPATH": path})
                    wall[job, name].append(time.perf_counter() - start)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu[job, name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    for label, table in (("wall", wall), ("CPU", cpu)):
        for job in jobs:
            base, this = table[job, "base"], table[job, "this"]
            print(f"{label:4} {job:24} base {statistics.median(base):.3f} s ({min(base):.3f}-{max(base):.3f})  "
                  f"this {statistics.median(this):.3f} s ({min(this):.3f}-{max(this):.3f})  "
                  f"ratio {statistics.median(this) / statistics.median(base):.3f}")


if __name__ == "__main__":
    main()
