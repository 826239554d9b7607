#!/bin/sh
# Train the shipped video ESPCN weights (srpipe/sr/weights/espcn_video_x2.pt, what `-m espcn` uses),
# one process on one thread at low priority (resumable: re-run it). It starts from the clean x2
# weights (scripts/train_shipped.sh), widened 24 -> 40 in the middle layers by --grow so that it
# begins exactly where they are. Training data: T91 + BSD200 less 20 held-out BSD200 images
# (--holdout 20), which are scored every epoch clean, non-antialiased and at x264 crf 23 and 30.
# The pan clips are cached under $RUNS/cache (about a minute to make). Log: $RUNS/x2w.log, $RUNS/x2w/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs17}
mkdir -p "$RUNS"
[ -f "$RUNS/x2w/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale 2 --preset shipped \
  --features 64,40,40,40,40,40,64 --patch 24 --batch 32 --last-lr-mult 0.1 --lr 5e-4 --epochs 20 --steps-per-epoch 500 \
  --degrade video --holdout 20 --val --lossless 0.25 --jpeg 0.05 \
  --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area \
  --init srpipe/sr/weights/espcn_x2.pt --grow --out "$RUNS/x2w" --cache-dir "$RUNS/cache" --resume \
  --export srpipe/sr/weights/espcn_video_x2.pt > "$RUNS/x2w.log" 2>&1
