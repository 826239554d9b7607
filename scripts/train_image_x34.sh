#!/bin/sh
# Train the still-image x3 and x4 ESPCN weights (srpipe/default_plugins/espcn/weights/espcn_image_x3.pt,
# espcn_image_x4.pt), what `-m espcn` runs on a picture at x3 and x4 (issue #25: the video weights
# lost 0.6-0.7 dB on clean photos there). Each is the clean network of its scale (espcn_x3.pt,
# espcn_x4.pt) widened 24 -> 64 in its middle layers by --grow (it starts exactly where the clean
# one is; at its own width, 2 epochs of this mix took it 0.76 dB below the clean weights on the
# held-out clean shrinks: it cannot hold both targets, as at x2) and fine-tuned, as
# scripts/train_image.sh does at x2, on clean shrinks with
# and without antialiasing: "--degrade video --lossless 0.95 --jpeg 0.05" makes lossless 3-frame
# pans (each image at several sub-pixel phases) and 5% JPEG stills; the kernel mix leans to
# antialiased shrinks (matlab-bicubic x3) beside opencv-cubic x3 (no antialiasing), swscale-bicubic,
# lanczos and area. T91 + BSD200 less 20 held-out BSD200 images, which are scored every epoch
# (clean, non-antialiased, x264 crf 23 and 30); selection uses them, never Set5/Set14.
# One process per scale, one thread each, at low priority; resumable (re-run it).
# Logs: $RUNS/x3i.log, $RUNS/x4i.log and $RUNS/x*i/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs25}
mkdir -p "$RUNS"
for s in 3 4; do
  [ -f "$RUNS/x${s}i/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale $s --preset shipped --patch 24 \
    --batch 32 --last-lr-mult 0.1 --lr 2e-4 --epochs ${EPOCHS:-8} --steps-per-epoch 500 --degrade video \
    --lossless 0.95 --jpeg 0.05 --variants 8 --clip-frames 3 --holdout 20 --val \
    --down-kernels matlab-bicubic,matlab-bicubic,matlab-bicubic,opencv-cubic,opencv-cubic,opencv-cubic,swscale-bicubic,lanczos,area \
    --features 64,64,64,64,64,64,64 --grow --init srpipe/default_plugins/espcn/weights/espcn_x$s.pt --out "$RUNS/x${s}i" --cache-dir "$RUNS/cache" --resume \
    --export "$RUNS/espcn_image_x$s.pt" > "$RUNS/x${s}i.log" 2>&1 &
done
wait
