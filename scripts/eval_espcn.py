#!/usr/bin/env python
"""Score ESPCN checkpoints (and bicubic) on SR test sets: Y-PSNR/SSIM, border = scale.

    python scripts/eval_espcn.py srpipe/default_plugins/espcn/weights/espcn_x3.pt          # Set5 + Set14
    python scripts/eval_espcn.py --scale 4                               # bicubic only
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from srpipe.default_plugins.espcn.evaluate import evaluate_folder
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

DATA = Path(os.environ.get("SRPIPE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*")
    p.add_argument("--scale", type=int, nargs="+", default=[2, 3, 4], help="bicubic-only scales")
    p.add_argument("--sets", nargs="+", default=[str(DATA / "sr/test/Set5"), str(DATA / "sr/test/Set14")])
    p.add_argument("--per-image", action="store_true")
    p.add_argument("--json", action="store_true", help="print the full results as JSON")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    jobs = [(c, ESPCNUpscaler(c)) for c in a.checkpoints] or [(f"bicubic x{s}", s) for s in a.scale]
    results = {}
    for name, up in jobs:
        scale = up if isinstance(up, int) else up.scale
        fn = None if isinstance(up, int) else (lambda x, up=up: up.upscale(x, bit_depth=8, full_range=False))
        results[name] = {Path(s).name: evaluate_folder(s, scale, fn) for s in a.sets}
    if a.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{'model':40s} {'set':8s} {'PSNR':>7s} {'SSIM':>7s} {'bicubic':>15s}")
    for name, sets in results.items():
        for set_name, r in sets.items():
            rows = [(set_name, r["mean"])] + ([(f"  {i['name']}", i) for i in r["images"]] if a.per_image else [])
            for label, m in rows:
                model = f"{m['psnr']:7.2f} {m['ssim']:7.4f}" if m.get("psnr") is not None else " " * 15
                print(f"{name[-40:]:40s} {label:8s} {model} {m['bicubic_psnr']:7.2f} {m['bicubic_ssim']:7.4f}")


if __name__ == "__main__":
    main()
