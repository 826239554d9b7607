#!/bin/sh
# Train the shipped ESPCN weights, one process at a time on one thread (resumable: re-run it).
# Stage 0 is the "wide" run of scripts/recipe_experiments.sh stopped after 6 of its 12 epochs
# (run it with --stop-after 6); x3 starts from it, x2 and x4 start from x3's trunk, and x4 gets
# a second cycle. Logs: $RUNS/x*.log and $RUNS/x*/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs}
ARCH="--preset fsrcnn --features 64,24,24,24,24,24,64 --patch 24 --batch 32 --last-lr-mult 0.1 --steps-per-epoch 400"
train() { s=$1; shift; [ -f "$RUNS/x$s/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale "$s" $ARCH \
    --out "$RUNS/x$s" --resume --export "srpipe/default_plugins/espcn/weights/espcn_x$s.pt" "$@" > "$RUNS/x$s.log" 2>&1; }
[ -f "$RUNS/exp/wide/last.pt" ] || nice -n 10 $PY scripts/train_espcn.py --scale 3 $ARCH --last-lr-mult 1 \
    --epochs 12 --stop-after 6 --out "$RUNS/exp/wide" > "$RUNS/exp/wide.log" 2>&1
train 3 --epochs 24 --init "$RUNS/exp/wide/last.pt"
train 2 --epochs 16 --init "$RUNS/x3/final.pt"
train 4 --epochs 16 --init "$RUNS/x3/final.pt"
# x4 after stage 3 scored 30.89 on Set5; a second, gentler cosine cycle from it:
[ -f "$RUNS/x4b/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale 4 $ARCH --epochs 20 --lr 5e-4 \
    --init "$RUNS/x4/final.pt" --out "$RUNS/x4b" --resume --export srpipe/default_plugins/espcn/weights/espcn_x4.pt > "$RUNS/x4b.log" 2>&1
