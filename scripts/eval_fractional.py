"""Fractional scales: which kernel resizes the model's output down to the exact size, and is
running the model at the next whole scale and shrinking better than running it at the lower
whole scale and enlarging with bicubic?

For each image of the folders (Y as MATLAB's rgb2ycbcr, the SR papers' convention) and each
factor s = p/q, the high-resolution crop is a multiple of p, the low-resolution input is its
MATLAB-bicubic shrink by 1/s (exact size), and the luma PSNR (border = ceil(s)) is scored for:

- ``down:KERNEL``: the model at ceil(s) (the next scale it has), then resized down with KERNEL;
- ``lower+bicubic``: the model at floor(s), then enlarged with OpenCV's bicubic (for s < 2:
  bicubic alone), the alternative the issue asks to compare with;
- ``bicubic``: OpenCV's bicubic from the input straight to the output size.

    .venv/bin/python scripts/eval_fractional.py /work/shared/data/sr/test/Set5 /work/shared/data/sr/test/Set14
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from fractions import Fraction

import cv2
import numpy as np

from srpipe.backends import load_upscaler
from srpipe.default_plugins.espcn.color import load_y
from srpipe.default_plugins.espcn.evaluate import to_uint8
from srpipe.default_plugins.espcn.imresize import imresize, resize_matrix
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.images import image_paths
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.resize import PlaneScaler, shrink_plane


def matlab_down(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """MATLAB's antialiased bicubic to an exact size (the reference separable kernel)."""
    h, w = plane.shape
    mh = resize_matrix(h, height, height / h)
    mw = resize_matrix(w, width, width / w)
    return to_uint8(mh @ plane.astype(np.float64) @ mw.T)


def swscale(method):
    def down(plane, width, height):
        out = np.empty((height, width), plane.dtype)
        PlaneScaler((plane.shape[1], plane.shape[0]), (width, height), 8, method).resize(
            np.ascontiguousarray(plane), out)
        return out
    return down


KERNELS = {
    "srpipe": lambda p, w, h: shrink_plane(p, w, h, 255),  # what srpipe uses (srpipe/resize.py)
    "cv2-area": lambda p, w, h: cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA),
    "cv2-cubic": lambda p, w, h: cv2.resize(p, (w, h), interpolation=cv2.INTER_CUBIC),
    "cv2-lanczos4": lambda p, w, h: cv2.resize(p, (w, h), interpolation=cv2.INTER_LANCZOS4),
    "swscale-bicubic": swscale("bicubic"),
    "swscale-lanczos": swscale("lanczos"),
    "matlab-bicubic-aa": matlab_down,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--models", default="bicubic,espcn-clean,espcn")
    parser.add_argument("--factors", default="1.5,2.5,3.5")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pm = get_plugin_manager()
    registry, backends = collect_models(pm), collect_backends(pm)
    loaded = {}

    def model(name, scale):
        if (name, scale) not in loaded:
            loaded[name, scale] = load_upscaler(registry.get(name), backends, scale=scale, device="cpu", weights=None)
        upscaler = loaded[name, scale]
        return lambda y: upscaler.upscale(y[None], bit_depth=8, full_range=False)[0]

    timing = {}
    for folder in args.folders:
        for factor in (Fraction(f) for f in args.factors.split(",")):
            p = factor.numerator
            upper, lower = math.ceil(factor), math.floor(factor)
            border = upper
            for name in args.models.split(","):
                scores: dict[str, list[float]] = {}
                for path in image_paths(folder):
                    hr = load_y(path)
                    hr = hr[: hr.shape[0] // p * p, : hr.shape[1] // p * p]
                    lr = to_uint8(imresize(hr, float(1 / factor)))
                    height, width = hr.shape
                    target = to_uint8(hr)
                    big = model(name, upper)(lr)
                    for kernel, down in KERNELS.items():
                        started = time.perf_counter()
                        out = down(big, width, height)
                        timing.setdefault(kernel, []).append((time.perf_counter() - started) / out.size)
                        scores.setdefault(f"down:{kernel}", []).append(psnr(out, target, border))
                    base = model(name, lower)(lr) if lower >= 2 else lr
                    up = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
                    scores.setdefault("lower+bicubic", []).append(psnr(up, target, border))
                    direct = cv2.resize(lr, (width, height), interpolation=cv2.INTER_CUBIC)
                    scores.setdefault("bicubic", []).append(psnr(direct, target, border))
                set_name = folder.rstrip("/").split("/")[-1]
                cells = "  ".join(f"{k}={np.mean(v):.2f}" for k, v in scores.items())
                print(f"{set_name} x{float(factor):g} {name} (x{upper} down / x{lower} up): {cells}", flush=True)
    print("ns per output pixel: " + "  ".join(f"{k}={1e9 * np.median(v):.2f}" for k, v in timing.items()))


if __name__ == "__main__":
    main()
