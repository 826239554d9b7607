#!/usr/bin/env python
"""Choose the quantizer thresholds at which `-m espcn` hands H.264 to its bit-rate weights
(``COARSE_QUANTIZER_KINDS`` in srpipe/default_plugins/espcn/__init__.py; docs/evaluation.md,
"Compressed video").

Each clip of a folder (the evaluation set's val split) is shrunk and encoded by x264 at each crf,
its quantizer read as srpipe reads it (``srpipe.video.mean_quantizer``), and upscaled by each
checkpoint in float (``--weights`` with ``--exact``); then, for each pair of thresholds asked, the
mean and worst Y-PSNR change per crf against the first checkpoint when the second runs from the
first threshold and the third from the second:

    python scripts/sweep_quantizer.py evalset/val --crfs 18,22,26,30,34,40 \\
        --weights srpipe/default_plugins/espcn/weights/espcn_fast_x2.pt \\
                  srpipe/default_plugins/espcn/weights/espcn_midbitrate_x2.pt \\
                  srpipe/default_plugins/espcn/weights/espcn_lowbitrate_x2.pt \\
        --thresholds 24/32 22/29 --json sweep.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.video_eval import clips_by_category, luma_frames, reference_lumas, shrink_and_encode
from srpipe.media import SinkOptions
from srpipe.memory import MAX_PIXELS_CAP
from srpipe.upscaling import upscale
from srpipe.video import mean_quantizer


def sweep(folder: str, crfs: list[int], weights: list[str]) -> list[dict]:
    """One row per clip and crf: its quantizer and each checkpoint's Y-PSNR."""
    rows = []
    for clips in clips_by_category(folder).values():
        for clip in clips:
            with tempfile.TemporaryDirectory() as temp:
                for crf in crfs:
                    small, big = Path(temp, "small.mp4"), Path(temp, "big.mkv")
                    width, height = shrink_and_encode(clip, small, 2, crf)
                    reference = list(reference_lumas(clip, width, height))
                    row = {"clip": str(clip), "crf": crf, "qp": mean_quantizer(str(small), MAX_PIXELS_CAP), "psnr": []}
                    for checkpoint in weights:
                        upscale(str(small), str(big), model="espcn", scale=2, weights=checkpoint, exact=True,
                                threaded=False, sink_options=SinkOptions(codec="ffv1", crf=None, preset=None,
                                                                         overwrite=True))
                        row["psnr"].append(float(np.mean([psnr(u, r, 2) for u, r in zip(luma_frames(big), reference)])))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict], crfs: list[int], thresholds: list[tuple[float, float]]) -> None:
    print("thresholds | " + " | ".join(f"crf {crf}" for crf in crfs))
    for first, second in thresholds:
        cells = []
        for crf in crfs:
            changes = []
            for row in (r for r in rows if r["crf"] == crf):
                qp = row["qp"] if row["qp"] is not None else -1
                pick = 2 if qp >= second else 1 if qp >= first else 0
                changes.append(row["psnr"][pick] - row["psnr"][0])
            cells.append(f"{np.mean(changes):+.2f} ({min(changes):+.2f})")
        print(f"{first:g} / {second:g} | " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--crfs", type=lambda text: [int(c) for c in text.split(",")], required=True)
    parser.add_argument("--weights", nargs=3, required=True, metavar=("BASE", "FROM_FIRST", "FROM_SECOND"))
    parser.add_argument("--thresholds", nargs="+", required=True, type=lambda text: tuple(map(float, text.split("/"))),
                        help="FIRST/SECOND quantizer pairs to tabulate")
    parser.add_argument("--json", help="write every clip's row here")
    args = parser.parse_args()
    rows = sweep(args.folder, args.crfs, args.weights)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    table(rows, args.crfs, args.thresholds)


if __name__ == "__main__":
    main()
