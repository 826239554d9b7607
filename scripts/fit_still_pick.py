"""Fit the look that sends a still picture to the clean or the still-image ESPCN weights
(srpipe/default_plugins/espcn/still_pick.py) and write it beside the weights.

Each training photo is shrunk by five kernels, three with antialiasing (MATLAB's bicubic,
swscale's bicubic, PIL's Lanczos: "antialiased") and two without (cv2.resize's cubic and
bilinear, also JPEG-compressed: "not"). Area averaging and JPEG copies of antialiased shrinks
are left out of the fit: on them the two weights are within 0.2 dB. A logistic regression,
"not" weighed 5 to 1, is fitted on the photos less the held-out ones of the still-image
weights (their checkpoint's "holdout"); the threshold is then the highest (at most 0.5) that
sends none of the held-out photos' unantialiased shrinks to the clean weights. Each scale tries
the whole middle of a picture and pieces of 64 and 48 pixels voting by their median, and keeps
the one that sends the most held-out antialiased shrinks to the clean weights.

    python scripts/fit_still_pick.py --data ../shared/data/sr/train/T91 --data ../shared/data/sr/train/BSD200

The look for near-lossless video (``espcn-lossless``, ``weights/espcn_video_pick_x{scale}.json``)
is fitted the same way with generated line art and text added to the photos (one picture in
four held out with the photos): animation and screen content are common in lossless video, and
the photos' look took a cartoon shrunk without antialiasing for an antialiased one at x2:

    python scripts/fit_still_pick.py --data ../shared/data/sr/train/T91 --data ../shared/data/sr/train/BSD200 \
        --line-art 80 --kind video
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srpipe.default_plugins.espcn.color import load_y, modcrop  # noqa: E402
from srpipe.default_plugins.espcn.degrade import make_degraded_lr  # noqa: E402
from srpipe.default_plugins.espcn.quantize import line_art_image  # noqa: E402
from srpipe.default_plugins.espcn.shipped import WEIGHTS_DIR, shipped_weights, still_pick_path, video_pick_path  # noqa: E402
from srpipe.default_plugins.espcn.still_pick import FEATURES, StillPick, features, pieces  # noqa: E402
from srpipe.images import image_paths  # noqa: E402
from srpipe.nn.checkpoint import load_checkpoint  # noqa: E402

ANTIALIASED = ("matlab-bicubic", "swscale-bicubic", "lanczos")
NOT_ANTIALIASED = ("opencv-cubic", "bilinear", "opencv-cubic+jpeg:quality=85", "bilinear+jpeg:quality=75")
PATCHES = (None, 64, 48)  # the whole middle, or pieces of 64 or 48 pixels a side voting by their median


def shrinks(pictures, scale, patch):
    """(features, not antialiased?, which picture and shrink) of every piece (:func:`pieces`) of
    every picture's shrinks; ``pictures`` are paths of photos or generated luma arrays."""
    rows, labels, owners = [], [], []
    for index, picture in enumerate(pictures):
        hr = modcrop(picture.astype(np.float64) if isinstance(picture, np.ndarray) else load_y(picture), scale)
        for kind in ANTIALIASED + NOT_ANTIALIASED:
            kernel, _, degrade = kind.partition("+")
            for piece in pieces(make_degraded_lr(hr, scale, kernel, degrade or "none"), patch):
                rows.append(features(piece))
                labels.append(kind in NOT_ANTIALIASED)
                owners.append((index, kind))
    return np.array(rows), np.array(labels), owners


def fit(train, held_out, scale, patch) -> tuple[StillPick, dict]:
    """The look fitted on ``train``'s pieces, its threshold set on ``held_out``, and how it did there."""
    rows, labels, _ = shrinks(train, scale, patch)
    model = LogisticRegression(C=1.0, max_iter=3000, class_weight={True: 5, False: 1}).fit(rows, labels)
    look = StillPick(scale, tuple(model.coef_[0].tolist()), float(model.intercept_[0]), 0.5, patch)
    rows, labels, owners = shrinks(held_out, scale, patch)
    votes: dict = {}
    for probability, label, owner in zip(look.probabilities(rows), labels, owners):
        votes.setdefault(owner, (label, []))[1].append(probability)
    pictures = [(label, float(np.median(probabilities))) for label, probabilities in votes.values()]
    not_antialiased = np.array([p for label, p in pictures if label])
    antialiased = np.array([p for label, p in pictures if not label])
    threshold = float(min(not_antialiased.min(), 0.5))  # below every held-out unantialiased shrink
    look = StillPick(scale, look.coef, look.intercept, threshold, patch)
    return look, {"photos": len(held_out), "antialiased_to_clean": float((antialiased < threshold).mean()),
                  "not_antialiased_to_clean": float((not_antialiased < threshold).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a folder of training photos (repeat)")
    parser.add_argument("--scale", type=int, action="append", help="2, 3 or 4 (repeat; default all three)")
    parser.add_argument("--line-art", type=int, default=0, metavar="N",
                        help="add N generated pictures of line art and text (one in four held out)")
    parser.add_argument("--kind", choices=("still", "video"), default="still",
                        help="which look to write: for pictures, or for near-lossless video")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    art = [line_art_image(1000 + seed, 480, 360) for seed in range(args.line_art)]
    for scale in args.scale or (2, 3, 4):
        holdout = set(load_checkpoint(shipped_weights(scale, "image")).get("meta", {}).get("holdout", ()))
        if not holdout:
            raise SystemExit(f"the x{scale} still-image weights name no held-out photos to set the threshold on")
        paths = [p for folder in args.data for p in image_paths(folder)]
        train = [p for p in paths if Path(p).name not in holdout] + [a for i, a in enumerate(art) if i % 4]
        held_out = [p for p in paths if Path(p).name in holdout] + [a for i, a in enumerate(art) if not i % 4]
        tried = [fit(train, held_out, scale, patch) for patch in PATCHES]
        for look, result in tried:
            print(f"x{scale}, pieces {look.patch or 'none'}: threshold {look.threshold:.3f}; held out: {result}")
        look, result = max(tried, key=lambda tried_one: tried_one[1]["antialiased_to_clean"])  # the first of equals
        record = {"scale": scale, "features": list(FEATURES), "coef": list(look.coef), "intercept": look.intercept,
                  "threshold": look.threshold, "patch": look.patch, "held_out": result, "line_art": args.line_art,
                  "tried": [{"patch": one.patch, "threshold": one.threshold, **outcome} for one, outcome in tried],
                  "command": " ".join(["python", *sys.argv])}
        out = args.out / (still_pick_path if args.kind == "still" else video_pick_path)(scale).name
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"x{scale}: pieces {look.patch or 'none'} chosen -> {out}")


if __name__ == "__main__":
    main()
