#!/usr/bin/env bash
# Rebuild the shipped classifier weights (srpipe/default_plugins/classifier/weights/*.pt).
# DATA: a writable folder in torchvision's layout (MNIST/raw, FashionMNIST/raw); downloaded
# there when missing and online. Rerunning resumes from RUNS/<dataset>/last.pt.
set -euo pipefail
DATA=${DATA:-/work/runs/tv-data}
RUNS=${RUNS:-/work/runs/classifier}
cd "$(dirname "$0")/.."

nice -n 10 srpipe train classifier --dataset mnist --root "$DATA" --epochs 20 --threads 1 \
  --out "$RUNS/mnist" --resume
nice -n 10 srpipe train classifier --dataset fashion-mnist --root "$DATA" --features 32,64 --dropout 0.25 \
  --epochs 30 --threads 1 --out "$RUNS/fashion-mnist" --resume

cp "$RUNS/mnist/final.pt" srpipe/default_plugins/classifier/weights/mnist.pt
cp "$RUNS/fashion-mnist/final.pt" srpipe/default_plugins/classifier/weights/fashion-mnist.pt
