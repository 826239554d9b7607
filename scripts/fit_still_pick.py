"""Fit the look that sends a still picture to the clean or the still-image ESPCN weights
(srpipe/default_plugins/espcn/still_pick.py) and write it beside the weights.

Each training photo is shrunk by five kernels, three with antialiasing (MATLAB's bicubic,
swscale's bicubic, PIL's Lanczos: "antialiased") and two without (cv2.resize's cubic and
bilinear, also JPEG-compressed: "not"). Area averaging and JPEG copies of antialiased shrinks
are left out of the fit: on them the two weights are within 0.2 dB. A logistic regression,
"not" weighed 5 to 1, is fitted on the photos less the held-out ones of the still-image
weights (their checkpoint's "holdout"); the threshold is then the highest (at most 0.5) that
sends none of the held-out photos' unantialiased shrinks to the clean weights.

    python scripts/fit_still_pick.py --data ../shared/data/sr/train/T91 --data ../shared/data/sr/train/BSD200
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srpipe.default_plugins.espcn.color import load_y, modcrop  # noqa: E402
from srpipe.default_plugins.espcn.degrade import make_degraded_lr  # noqa: E402
from srpipe.default_plugins.espcn.evaluate import image_paths  # noqa: E402
from srpipe.default_plugins.espcn.shipped import WEIGHTS_DIR, shipped_weights  # noqa: E402
from srpipe.default_plugins.espcn.still_pick import FEATURES, features  # noqa: E402

ANTIALIASED = ("matlab-bicubic", "swscale-bicubic", "lanczos")
NOT_ANTIALIASED = ("opencv-cubic", "bilinear", "opencv-cubic+jpeg:quality=85", "bilinear+jpeg:quality=75")


def shrinks(paths, scale):
    """(features, not antialiased?) of every photo's shrinks."""
    rows, labels = [], []
    for path in paths:
        hr = modcrop(load_y(path), scale)
        for kind in ANTIALIASED + NOT_ANTIALIASED:
            kernel, _, degrade = kind.partition("+")
            rows.append(features(make_degraded_lr(hr, scale, kernel, degrade or "none")))
            labels.append(kind in NOT_ANTIALIASED)
    return np.array(rows), np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a folder of training photos (repeat)")
    parser.add_argument("--scale", type=int, action="append", help="2, 3 or 4 (repeat; default all three)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    for scale in args.scale or (2, 3, 4):
        holdout = set(torch.load(shipped_weights(scale, "image"), map_location="cpu", weights_only=False)
                      ["meta"].get("holdout", ()))
        if not holdout:
            raise SystemExit(f"the x{scale} still-image weights name no held-out photos to set the threshold on")
        paths = [p for folder in args.data for p in image_paths(folder)]
        fit_x, fit_y = shrinks([p for p in paths if Path(p).name not in holdout], scale)
        val_x, val_y = shrinks([p for p in paths if Path(p).name in holdout], scale)
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight={True: 5, False: 1}).fit(fit_x, fit_y)
        p = model.predict_proba(val_x)[:, 1]
        threshold = float(min(p[val_y].min(), 0.5))  # below every held-out unantialiased shrink
        fit = {"scale": scale, "features": list(FEATURES), "coef": model.coef_[0].tolist(),
               "intercept": float(model.intercept_[0]), "threshold": threshold,
               "held_out": {"photos": len(holdout), "antialiased_to_clean": float((p[~val_y] < threshold).mean()),
                            "not_antialiased_to_clean": float((p[val_y] < threshold).mean())},
               "command": " ".join(["python", *sys.argv])}
        out = args.out / f"espcn_still_pick_x{scale}.json"
        out.write_text(json.dumps(fit, indent=1) + "\n")
        print(f"x{scale}: threshold {threshold:.3f}; held out: {fit['held_out']} -> {out}")


if __name__ == "__main__":
    main()
