#!/bin/sh
# Wider clean-image x3 and x4 weights (issue #25): the clean network of each scale grown 24 -> 40 in
# its middle layers by --grow (training starts exactly where the shipped clean weights are) and
# fine-tuned on the clean recipe's pairs (MATLAB-bicubic shrinks). 20 BSD200 images are held out
# and scored every epoch; selection uses them, never Set5/Set14.
# One thread, low priority; resumable (re-run it). WIDTH=24 runs the same at the shipped width (a control).
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs29}
W=${WIDTH:-40}
mkdir -p "$RUNS"
for s in ${SCALES:-3 4}; do
  if [ "$W" = 24 ]; then grow=; else grow=--grow; fi
  [ -f "$RUNS/x${s}c$W/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale $s --preset fsrcnn \
    --features 64,$W,$W,$W,$W,$W,64 $grow --init srpipe/default_plugins/espcn/weights/espcn_x$s.pt \
    --patch 24 --batch 32 --last-lr-mult 0.1 --lr ${LR:-3e-4} --epochs ${EPOCHS:-20} --steps-per-epoch 400 \
    --holdout 20 --val --cache-dir "$RUNS/cache" --out "$RUNS/x${s}c$W" --resume \
    --export "$RUNS/espcn_x${s}_c$W.pt" > "$RUNS/x${s}c$W.log" 2>&1
done
