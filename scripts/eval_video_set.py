#!/usr/bin/env python
"""Score upscalers on a set of clips at several x264 crf values (``srpipe eval --video`` for
each clip, every model on the same encodes); prints the mean Y-PSNR per crf over the clips.

    python scripts/make_pan_clips.py --out /tmp/evalset
    python scripts/eval_video_set.py /tmp/evalset/*.mp4 --models bicubic espcn-clean espcn
    python scripts/eval_video_set.py samples/bigbuckbunny.mp4 --models bicubic espcn=run/x2.pt
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from srpipe.default_plugins.espcn.video_eval import evaluate_video


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="+")
    p.add_argument("--models", nargs="+", default=["bicubic", "espcn-clean", "espcn"],
                   help="model names, or NAME=WEIGHTS for a checkpoint; the first is the baseline")
    p.add_argument("--crf", type=lambda t: [int(c) for c in t.split(",")], default=[0, 23, 30])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--frames", type=int, help="first N frames of each clip")
    p.add_argument("--backend", default="auto", help="inference backend, as for srpipe upscale")
    p.add_argument("--json", help="write every clip's scores here")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) if "=" in m else (m, None) for m in a.models)
    labels = {name: name if w is None else f"{name}={w}" for name, w in models.items()}
    runs = [evaluate_video(c, models, a.scale, a.crf, backend=a.backend, frames=a.frames) for c in a.clips]
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"models": labels, "clips": runs}, f, indent=1)
    base = next(iter(models))
    print(f"x{a.scale}, {len(runs)} clips, mean Y-PSNR (dB) over frames then clips; gain over {base} in brackets")
    print(f"{'crf':>4} " + " ".join(f"{labels[m][-28:]:>28}" for m in models))
    for i, crf in enumerate(a.crf):
        means = {m: float(np.mean([r["crfs"][i]["psnr"][m] for r in runs])) for m in models}
        print(f"{crf:>4} " + " ".join(f"{means[m]:>19.2f} ({means[m] - means[base]:+.2f})" for m in models))


if __name__ == "__main__":
    main()
