#!/usr/bin/env python
"""Make the video evaluation set: a camera pan across each test image, as a lossless clip.

    python scripts/make_pan_clips.py --out /tmp/evalset            # Set5 + Set14 -> 19 clips
    python scripts/eval_video_set.py /tmp/evalset/*.mp4 samples/bigbuckbunny.mp4

Each clip is ``--frames`` whole-pixel crops of the photo, a window of ``--window`` of its size
moving from one corner to the opposite one (or a side to side where the image is narrow), so
the frames hold the photo's own pixels (no resampling) and the motion between frames is
irregular sub-window steps, as in a real pan. x264 stores them losslessly (crf 0, yuv420p:
the luma is exact); ``srpipe eval --video`` shrinks and compresses them. These images are
for evaluation only: the training scripts never read ``sr/test``.
"""

from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

DATA = Path(os.environ.get("SRPIPE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def pan_clip(image: np.ndarray, out: Path, frames: int, window: float, rate: int = 25) -> None:
    h, w = image.shape[:2]
    ch, cw = int(h * window) // 12 * 12, int(w * window) // 12 * 12  # fits 4:2:0 at x2, x3 and x4
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = cw, ch, "yuv420p"
        stream.options = {"crf": "0", "preset": "medium"}
        for i, t in enumerate(np.linspace(0, 1, frames)):
            y, x = int(round(t * (h - ch))), int(round(t * (w - cw)))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[y:y + ch, x:x + cw]), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="*", default=[str(DATA / "sr/test/Set5"), str(DATA / "sr/test/Set14")])
    p.add_argument("--out", required=True, help="folder for the clips (SET-IMAGE.mp4)")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--window", type=float, default=0.75, help="crop size as a fraction of the image")
    a = p.parse_args(argv)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for folder in map(Path, a.folders):
        for path in sorted(folder.glob("*.png")):
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
            out = Path(a.out, f"{folder.name}-{path.stem}.mp4")
            pan_clip(image, out, a.frames, a.window)
            print(out)


if __name__ == "__main__":
    main()
