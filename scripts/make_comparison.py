"""Make docs/comparison.png: the most detailed crop of a Big Buck Bunny frame shrunk x3,
then upscaled by bicubic and by the shipped ESPCN x3, beside the original (luma PSNR in
each label, zoomed 3x with nearest neighbour so pixels stay visible).

    .venv/bin/python scripts/make_comparison.py [--frame 60] [--out docs/comparison.png]
"""

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from srpipe.default_plugins.espcn.evaluate import bicubic_upscale, make_lr, to_uint8
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.video import frame_from_av

REPO = Path(__file__).resolve().parent.parent
SCALE = 3


def frame_luma(path: Path, index: int) -> np.ndarray:
    """Limited-range 8-bit luma of one frame, straight from the decoder."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame_from_av(frame).planes[0].copy()
    raise ValueError(f"{path} has no frame {index}")


def most_detailed(luma: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the crop with the most edge energy (on a grid of half-crop steps)."""
    edges = np.abs(cv2.Laplacian(luma.astype(np.float64), cv2.CV_64F))
    corners = [(y, x) for y in range(0, luma.shape[0] - size, size // 2)
               for x in range(0, luma.shape[1] - size, size // 2)]
    return max(corners, key=lambda c: edges[c[0]:c[0] + size, c[1]:c[1] + size].sum())


def labelled(image: np.ndarray, text: str, zoom: int) -> np.ndarray:
    big = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    big = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    cv2.rectangle(big, (0, 0), (big.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(big, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=int, default=100)
    parser.add_argument("--size", type=int, default=120, help="side of the square crop, in pixels")
    parser.add_argument("--out", default=str(REPO / "docs" / "comparison.png"))
    args = parser.parse_args()
    luma = frame_luma(REPO / "samples" / "bigbuckbunny.mp4", args.frame)
    y, x = most_detailed(luma, args.size)
    hr = luma[y:y + args.size, x:x + args.size].astype(np.float64)
    lr = make_lr(hr, SCALE)
    bicubic = bicubic_upscale(lr, SCALE)
    espcn = ESPCNUpscaler(shipped_weights(SCALE)).upscale(lr[None], bit_depth=8, full_range=False)[0]
    original = to_uint8(hr)
    panels = [
        labelled(bicubic, f"bicubic x{SCALE}  {psnr(bicubic, hr, SCALE):.2f} dB", 3),
        labelled(espcn, f"ESPCN x{SCALE}  {psnr(espcn, hr, SCALE):.2f} dB", 3),
        labelled(original, "original", 3),
    ]
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, np.hstack([panels[0], gap, panels[1], gap, panels[2]]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
