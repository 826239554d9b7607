#!/bin/sh
# Train the shipped video ESPCN weights (srpipe/default_plugins/espcn/weights/espcn_video_x2.pt, what `-m espcn` uses),
# one process on one thread at low priority (resumable: re-run it). It starts from the clean x2
# weights (scripts/train_shipped.sh), widened 24 -> 40 in the middle layers by --grow so that it
# begins exactly where they are. Training data: T91 + BSD200 less 20 held-out BSD200 images
# (--holdout 20), which are scored every epoch clean, non-antialiased and at x264 crf 23 and 30.
# The pan clips are cached under $RUNS/cache (about a minute to make).
# Stage 1 is 5 epochs of a 20-epoch cosine schedule (the machine was needed for other work, so the
# schedule was cut there); stage 2 is a shorter cosine cycle from it at a lower peak rate.
# Logs: $RUNS/x2w*.log and $RUNS/x2w*/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs17}
mkdir -p "$RUNS"
COMMON="--scale 2 --preset shipped --features 64,40,40,40,40,40,64 --patch 24 --batch 32 --last-lr-mult 0.1
  --steps-per-epoch 500 --degrade video --holdout 20 --val --lossless 0.25 --jpeg 0.05
  --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area
  --cache-dir $RUNS/cache --resume"
[ -f "$RUNS/x2w/stage1_epoch5.pt" ] || { nice -n 10 $PY scripts/train_espcn.py $COMMON --lr 5e-4 --epochs 20 \
  --stop-after 5 --init srpipe/default_plugins/espcn/weights/espcn_x2.pt --grow --out "$RUNS/x2w" > "$RUNS/x2w.log" 2>&1 &&
  cp "$RUNS/x2w/last.pt" "$RUNS/x2w/stage1_epoch5.pt"; }
[ -f "$RUNS/x2w2/result.json" ] || nice -n 10 $PY scripts/train_espcn.py $COMMON --lr 3e-4 --epochs 8 --seed 1 \
  --init "$RUNS/x2w/stage1_epoch5.pt" --out "$RUNS/x2w2" --export srpipe/default_plugins/espcn/weights/espcn_video_x2.pt > "$RUNS/x2w2.log" 2>&1
# x3 and x4: the clean network of that scale fine-tuned on the same kind of data.
for s in 3 4; do
  [ -f "$RUNS/x${s}v/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale $s --preset shipped --patch 24 \
    --batch 32 --last-lr-mult 0.1 --lr 5e-4 --epochs 8 --steps-per-epoch 500 --degrade video --holdout 20 --val \
    --lossless 0.25 --jpeg 0.05 \
    --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area \
    --init srpipe/default_plugins/espcn/weights/espcn_x$s.pt --out "$RUNS/x${s}v" --cache-dir "$RUNS/cache" --resume \
    --export srpipe/default_plugins/espcn/weights/espcn_video_x$s.pt > "$RUNS/x${s}v.log" 2>&1
done
