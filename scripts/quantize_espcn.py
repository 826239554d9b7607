#!/usr/bin/env python
"""Quantize shipped ESPCN weights to int8 (NNCF) and ship the first recipe that passes the gate.

    pip install -e '.[quantize]'        # NNCF; srpipe itself never needs it
    python scripts/quantize_espcn.py srpipe/default_plugins/espcn/weights/espcn_video_x2.pt

Calibration: ``--calibration-images`` patches, a ``--line-art`` share of them from generated
line art and screen text (black on white and white on black: photos alone set ranges that clip
on full-contrast edges), the rest from the training photos (T91 + BSD200, the checkpoint's
holdout left out), all degraded as the checkpoint's training degraded them. The gate (see
srpipe/default_plugins/espcn/quantize.py): Big Buck Bunny cut into 6 regions, a scrolling
screen of text, turning line art and panning black-and-white art, shrunk x2..x4 and encoded by
x264 at crf 0, 23 and 30;
the int8 graph may lose at most 0.1 dB of mean luma PSNR against float32 at each crf, and no
clip more than 0.3 dB; and it must run on every tile shape up to 64 LR pixels high, the blocks
tile reuse reads and whole frames without crashing OpenVINO (a child process tries them). Each
recipe's table is printed; the first that passes is saved beside the checkpoint as
NAME.int8.xml/.bin with its record NAME.int8.json (``--out`` for another folder). Nothing is
saved where none passes.

    python scripts/quantize_espcn.py --speed srpipe/default_plugins/espcn/weights/espcn_video_x2.pt

times the network alone on each CPU backend (a 640x480 frame, 64 crops of 46x46).

    python scripts/quantize_espcn.py --check srpipe/default_plugins/espcn/weights/espcn_*_x2.pt

runs the gate again on the int8 graphs shipped for those checkpoints, on this machine's CPU: int8
convolutions run on other instructions on other CPUs (AVX2's multiply-adds saturate at 16 bits,
VNNI's and AMX's dot products do not), so a graph that passed where it was made is checked on
each kind of CPU that ``auto`` gives it to. Prints each graph's losses beside the ones its record
gives, and exits 1 where one fails the gate here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DATA = Path(os.environ.get("SRPIPE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def main() -> None:
    from srpipe.default_plugins.espcn import quantize
    from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--recipe", action="append", choices=sorted(quantize.RECIPES),
                        help="recipes to try, in order of preference (default: all, fastest first)")
    parser.add_argument("--video", type=Path, default=DATA / "video" / "bigbuckbunny.mp4",
                        help="real footage for the gate (never used in calibration)")
    parser.add_argument("--train", type=Path, nargs="+",
                        default=[DATA / "sr" / "train" / "T91", DATA / "sr" / "train" / "BSD200"])
    parser.add_argument("--calibration-images", type=int, default=300)
    parser.add_argument("--line-art", type=float, default=0.1,
                        help="share of the calibration patches cut from generated line art (default 0.1)")
    parser.add_argument("--out", type=Path, help="folder for the int8 graphs (default: each checkpoint's)")
    parser.add_argument("--speed", action="store_true",
                        help="only time the network on each CPU backend (int8: the shipped graph)")
    parser.add_argument("--check", action="store_true",
                        help="only run the gate on the int8 graphs shipped for the checkpoints, on this CPU")
    args = parser.parse_args()
    if args.speed:
        for checkpoint in args.checkpoints:
            print(checkpoint.name)
            quantize.network_speed(checkpoint)
        return
    if args.check:
        passed = [check_shipped(checkpoint, args.video) for checkpoint in args.checkpoints]  # each one checked
        raise SystemExit(0 if all(passed) else 1)
    recipes = [quantize.RECIPES[name] for name in args.recipe or ("histogram-all-int8-equalized",
                                                                   "histogram-all-int8-bias-correction",
                                                                   "histogram-float-ends")]
    clips = quantize.gate_clips(args.video)
    for checkpoint in args.checkpoints:
        started = time.time()
        ckpt = load_checkpoint(checkpoint)
        network = network_from_checkpoint(ckpt, str(checkpoint)).eval()
        scale = network.config.scale
        samples, photos = quantize.calibration_samples(args.train, ckpt["meta"], scale, args.calibration_images,
                                                       line_art=args.line_art)
        calibration = {"data": [p.name for p in args.train], "images": photos,
                       "samples": len(samples), "patch": samples[0].shape[-1], "line_art_share": args.line_art,
                       "degradations": "the checkpoint's meta: down_kernels, crf_range, lossless, jpeg, clip_frames"}
        candidates = {r.name: quantize.quantized(network, samples, r) for r in recipes}
        print(f"{checkpoint.name}: calibrated on {len(samples)} patches; gate on {len(clips)} clips", flush=True)
        scores = quantize.gate_scores(checkpoint, clips, candidates)
        shipped = None
        for recipe in recipes:
            result = {ref: quantize.verdict(scores, recipe.name, ref) for ref in ("openvino", "openvino-bf16")
                      if ref in next(iter(scores[quantize.GATE_CRFS[0]].values()))}
            print(recipe.name, json.dumps(result))
            if shipped is None and result["openvino"]["passed"]:
                if not quantize.survives_shapes(candidates[recipe.name], network.config):
                    print(f"{recipe.name}: OpenVINO crashed running it on some tile shape; not shipped", flush=True)
                    continue
                shipped = quantize.ship(candidates[recipe.name], checkpoint, recipe, scores, calibration,
                                        args.out or checkpoint.parent)
        print(f"{checkpoint.name}: {'shipped ' + str(shipped) if shipped else 'no recipe passed; nothing shipped'} "
              f"({(time.time() - started) / 60:.1f} min)", flush=True)


def check_shipped(checkpoint: Path, video: Path) -> bool:
    """Whether the int8 graph shipped for ``checkpoint`` passes the gate on this CPU; prints its
    losses against float32 beside those its record gives."""
    from srpipe import cache
    from srpipe.default_plugins.espcn import quantize
    from srpipe.default_plugins.espcn.openvino_backend import INT8_FLAGS, cpu_flags, int8_paths, shipped_int8

    model = shipped_int8(cache.file_digest(checkpoint), checkpoint.parent)
    if model is None:
        print(f"{checkpoint.name}: no int8 graph shipped for it (or it does not match its record)")
        return False
    recorded = json.loads(int8_paths(checkpoint.parent, checkpoint.stem)[2].read_text())["gate"]["against"]["openvino"]
    isa = sorted(cpu_flags() & INT8_FLAGS)
    print(f"{checkpoint.name}: the shipped int8 graph on this CPU ({', '.join(isa) or 'none of the int8 flags'})",
          flush=True)
    scores = quantize.gate_scores(checkpoint, quantize.gate_clips(video), {"int8": model})
    here = quantize.verdict(scores, "int8")
    for crf, loss in here["crfs"].items():
        then = recorded["crfs"][str(crf)]
        print(f"  crf {crf:2d}: loss against float32, mean {loss['mean_loss_db']:.3f} dB, worst clip "
              f"{loss['worst_clip_loss_db']:.3f} (where it was made: {then['mean_loss_db']:.3f}, "
              f"{then['worst_clip_loss_db']:.3f})")
    print(f"  {'passes' if here['passed'] else 'FAILS'} the gate here", flush=True)
    return here["passed"]


if __name__ == "__main__":
    main()
