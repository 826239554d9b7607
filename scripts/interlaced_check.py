#!/usr/bin/env python
"""How much deinterlacing gives: real footage made interlaced, upscaled with and without it.

    python scripts/interlaced_check.py samples/bigbuckbunny.mp4 -m bicubic -m espcn

Consecutive frames of CLIP stand in for fields a field apart. Each is shrunk x2 (area
average), and pairs are woven into interlaced frames (``srpipe.testing.make_interlaced_clip``,
bottom field first, x264 crf 18). ``srpipe upscale -s 2`` then runs on that clip with
``--deinterlace auto`` and ``off``, and each output frame is scored (luma PSNR) against the full
size frame its first field was shrunk from: what the camera saw at that frame's time, over the
whole frame and where the picture moved between the two fields (a change of more than 10 code
values, widened by 4 pixels), which is where combing shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from srpipe.testing import make_interlaced_clip


def pictures(clip: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``clip`` as RGB, cropped to a multiple of 4 each way."""
    with av.open(str(clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(rgb[:rgb.shape[0] // 4 * 4, :rgb.shape[1] // 4 * 4])
            if len(frames) == count:
                return frames
    return frames


def luma(rgb: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()[:rgb.shape[0]]


def psnr(error: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / max(np.mean(error ** 2), 1e-10))


def score(output: Path, truths: list[np.ndarray], moving: list[np.ndarray]) -> tuple[float, float]:
    """Mean luma PSNR over whole frames, and over their ``moving`` pixels (frames with any)."""
    with av.open(str(output)) as container:
        frames = [frame.to_ndarray(format="gray").astype(np.float64) for frame in container.decode(video=0)]
    if len(frames) != len(truths):
        raise SystemExit(f"{output}: {len(frames)} frames, expected {len(truths)}")
    errors = [frame - truth for frame, truth in zip(frames, truths)]
    return (float(np.mean([psnr(error) for error in errors])),
            float(np.mean([psnr(error[mask]) for error, mask in zip(errors, moving) if mask.any()])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path)
    parser.add_argument("-m", "--model", action="append", help="models to run (default: bicubic)")
    parser.add_argument("--frames", type=int, default=60, help="interlaced frames to make (two source frames each)")
    args = parser.parse_args()
    full = pictures(args.clip, 2 * args.frames)
    full = full[:len(full) // 2 * 2]
    lumas = [luma(picture).astype(np.float64) for picture in full]
    truths = lumas[::2]
    kernel = np.ones((9, 9), np.uint8)
    moving = [cv2.dilate((np.abs(first - second) > 10).astype(np.uint8), kernel) > 0
              for first, second in zip(lumas[::2], lumas[1::2])]
    small = [cv2.resize(picture, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for picture in full]
    with tempfile.TemporaryDirectory() as folder:
        interlaced = make_interlaced_clip(Path(folder) / "interlaced.mp4", small, crf=18)
        share = np.mean([mask.mean() for mask in moving])
        print(f"{args.clip}: {len(truths)} interlaced frames of {small[0].shape[1]}x{small[0].shape[0]}, x2; "
              f"{share:.0%} of the pixels moved between fields")
        print("| model | --deinterlace auto: all / moving | --deinterlace off: all / moving |\n|---|---|---|")
        for model in args.model or ["bicubic"]:
            row = []
            for mode in ("auto", "off"):
                output = Path(folder) / f"{model}-{mode}.mp4"
                subprocess.run([sys.executable, "-m", "srpipe", "upscale", str(interlaced), "-o", str(output), "-m",
                                model, "-s", "2", "--crf", "0", "--deinterlace", mode, "-q"], check=True)
                row.append("%.2f / %.2f dB" % score(output, truths, moving))
            print(f"| {model} | {' | '.join(row)} |")


if __name__ == "__main__":
    main()
