"""The pipeline's frame rate around a model that waits without holding the CPU, as a GPU's network
does, to see what the threads around the model cost it where no GPU is at hand.

The stand-in model upscales the luma by OpenCV's bicubic (about what the host does for a GPU's
call: the samples up and back) and then sleeps ``--wait-ms`` per frame, the GIL released, as
torch waits for CUDA. The output is written by ``--codec`` (rawvideo by default: no encoder
limits the rate). Each wait runs ``--repeats`` times; the median of the pipeline's own frame rate
(``upscale --json``'s ``fps``) is printed.

    python scripts/pipeline_overlap.py clip.mp4 --wait-ms 0,4,6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from srpipe import hookimpl
from srpipe.media import SinkOptions
from srpipe.models import ModelSpec
from srpipe.testing import make_plugin_manager
from srpipe.upscaling import upscale


class WaitingModel:
    scale = 2

    def __init__(self, wait_s: float):
        self.wait_s = wait_s

    def upscale(self, luma, *, bit_depth, full_range):
        n, h, w = luma.shape
        out = np.empty((n, h * 2, w * 2), luma.dtype)
        for i in range(n):
            cv2.resize(luma[i], (w * 2, h * 2), dst=out[i], interpolation=cv2.INTER_CUBIC)
        time.sleep(self.wait_s * n)
        return out


class Plugin:
    def __init__(self, wait_s: float):
        self.wait_s = wait_s

    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="waits", scales=(2,), description="bicubic, then a wait per frame",
                           load=lambda **kw: WaitingModel(self.wait_s)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("--wait-ms", default="0,4,6", help="the model's wait per frame, comma-separated")
    parser.add_argument("--codec", default="rawvideo")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        output = str(Path(folder) / "out.nut")
        for wait_ms in (float(part) for part in args.wait_ms.split(",")):
            pm = make_plugin_manager()
            pm.register(Plugin(wait_ms / 1000))
            rates = [upscale(args.clip, output, model="waits", batch_size=args.batch_size, pm=pm,
                             sink_options=SinkOptions(codec=args.codec, crf=None, overwrite=True)).stats.fps
                     for _ in range(args.repeats)]
            print(f"wait {wait_ms:g} ms a frame: {statistics.median(rates):.1f} fps "
                  f"({min(rates):.1f}-{max(rates):.1f})")


if __name__ == "__main__":
    main()
