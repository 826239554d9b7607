#!/usr/bin/env python
"""Table of training runs: MAC/LR px, training minutes and the last Set5/Set14 Y-PSNR of each.

    python scripts/summarize_runs.py /work/runs/exp/*
"""

import json
import sys
from pathlib import Path

from srpipe.nn.checkpoint import load_checkpoint


def main(argv=None) -> None:
    print(f"{'run':14s} {'MAC/px':>7s} {'epochs':>6s} {'min':>6s} {'Set5':>7s} {'Set14':>7s}")
    for d in map(Path, argv or sys.argv[1:]):
        log = d / "log.jsonl"
        if not log.exists():
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        if (d / "result.json").exists():
            result = json.loads((d / "result.json").read_text())
        else:  # unfinished: the meta of its last checkpoint
            result = load_checkpoint(d / "last.pt")["meta"]
        last = rows[-1]
        print(f"{d.name:14s} {result.get('macs_per_lr_pixel', '?'):>7} {last['epoch']:>6d} "
              f"{sum(r['epoch_s'] for r in rows) / 60:6.1f} "
              f"{last.get('Set5/psnr', float('nan')):7.2f} {last.get('Set14/psnr', float('nan')):7.2f}")


if __name__ == "__main__":
    main()
