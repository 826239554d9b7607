#!/bin/sh
# Short x3 runs (1 thread each, one after another) comparing training recipes.
# Results: /work/runs/exp/<name>/result.json and log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs/exp}
run() { name=$1; shift; [ -f "$RUNS/$name/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale 3 --out "$RUNS/$name" --resume "$@" > "$RUNS/$name.log" 2>&1 || true; }
mkdir -p "$RUNS"
run paper       --preset paper --loss mse --patch 17 --batch 64 --epochs 12 --steps-per-epoch 400
run paper_res   --preset paper --residual --loss l1 --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400
run fsrcnn      --preset fsrcnn --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400
# fsrcnn_b4 (stopped after 7 of 12 epochs: behind fsrcnn at every epoch and 60% slower):
# run fsrcnn_b4   --preset fsrcnn --patch 32 --batch 18 --border 4 --epochs 12 --steps-per-epoch 400
run fsrcnn_ms   --preset fsrcnn --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400 --rescales 1,0.9,0.8,0.7,0.6
run fsrcnn_lr01 --preset fsrcnn --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400 --last-lr-mult 0.1
# wide: stopped after 6 of 12 epochs for time (ahead of fsrcnn at every epoch); its last.pt seeds the x3 run
run wide        --preset fsrcnn --features 64,24,24,24,24,24,64 --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400
# skipped for lack of time (narrow layers ran 2.6x below the wide ones' MAC rate here):
# run deep16      --preset fsrcnn --features 56,16,16,16,16,16,16,16,56 --kernels 5,1,3,3,3,3,3,3,1,3 --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400
# not run for lack of time:
# run mid32       --preset fsrcnn --features 64,32,32,32,32,64 --kernels 5,1,3,3,3,3,1,3 --patch 24 --batch 32 --epochs 12 --steps-per-epoch 400
