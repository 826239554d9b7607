#!/usr/bin/env python
"""How far the upscaled chroma of 4:2:0 video lands from the picture's own, sited as video sites it.

    python scripts/eval_chroma_siting.py ../shared/data/sr/test/Set5 ../shared/data/sr/test/Set14

Each colour picture (grey ones are left out) is shrunk x2 by area; both sizes go to limited-range
Y'CbCr (OpenCV's BT.601 conversion) and to 4:2:0 chroma sited as H.264 sites it by default ("left":
horizontally on the first luma sample of each pair, [1 2 1] / 4 there, vertically the mean of the
two rows). The small chroma is upscaled x2 by srpipe (``srpipe.resize.resize_chroma``) and as each
plane was resized before, as a picture of its own (``resize_plane``), and each is scored by PSNR
against the big picture's chroma. Prints the mean over all chroma planes and the least and most
gained (docs/how-it-works.md).
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from srpipe.frames import PLANE_FORMATS
from srpipe.resize import resize_chroma, resize_plane


def sited_420(chroma: np.ndarray) -> np.ndarray:
    """4:2:0 chroma sited "left": [1 2 1] / 4 on even columns, the mean of each pair of rows."""
    padded = np.pad(chroma, ((0, 0), (1, 1)), mode="edge")
    columns = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:])[:, 0::2] / 4
    return (columns[0::2] + columns[1::2]) / 2


def limited(chroma: np.ndarray) -> np.ndarray:
    return 16 + chroma * 224 / 255


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    fmt, before, now = PLANE_FORMATS["yuv420p"], [], []
    for path in sorted(p for folder in args.folders for p in folder.glob("*.png")):
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if picture is None or (np.array_equal(picture[..., 0], picture[..., 1])
                               and np.array_equal(picture[..., 1], picture[..., 2])):
            continue
        height, width = (side - side % 8 for side in picture.shape[:2])
        big = cv2.cvtColor(picture[:height, :width], cv2.COLOR_BGR2YCrCb).astype(np.float64)
        small = cv2.cvtColor(cv2.resize(picture[:height, :width], (width // 2, height // 2),
                                        interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2YCrCb).astype(np.float64)
        targets = [limited(sited_420(big[..., c])) for c in (1, 2)]
        chroma = [np.clip(np.rint(limited(sited_420(small[..., c]))), 0, 255).astype(np.uint8) for c in (1, 2)]
        sited = resize_chroma(chroma, (width // 2, height // 2), (width, height), fmt, full_range=False)
        for target, plane, upscaled in zip(targets, chroma, sited):
            before.append(psnr(resize_plane(plane, width // 2, height // 2, 255, full_range=False), target))
            now.append(psnr(upscaled, target))
    gains = np.array(now) - np.array(before)
    print(f"{len(now)} chroma planes: {np.mean(before):.2f} dB as pictures of their own, {np.mean(now):.2f} dB sited "
          f"(gain {gains.min():+.2f} to {gains.max():+.2f})")


if __name__ == "__main__":
    main()
