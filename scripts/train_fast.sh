#!/bin/sh
# Train the fast x2 network (srpipe/default_plugins/espcn/weights/espcn_fast_x2.pt): what `-m espcn`
# runs on the CPU unless --exact (issue #24). Half the arithmetic of the video x2 weights and
# 32-wide layers, which OpenVINO runs 2.4x faster in bfloat16 and 2.1x in float32 than the 40-wide
# ones: 5x5 to 32, four 3x3 at 32, 3x3 to 4, PReLU, global bicubic residual (38,880 MAC per LR
# pixel, receptive radius 7 as before, so tile reuse reads the same halos).
# It learns from the video x2 weights (--teacher: half of the loss is the distance to their output)
# and from the HR targets, on the video weights' kind of data (x264 pan clips, several kernels,
# lossless and JPEG shares; 20 BSD200 images held out and scored every epoch, no Set5/Set14), and on
# 80 generated pictures of line art and screen text (srpipe.default_plugins.espcn.quantize.line_art_image,
# seeds 1000-1079; never the evaluation set's clips): trained on photos alone, a network this size
# fell 0.9 dB below the video weights on animation (the evaluation set's val clip cartoon-street),
# with them 0.07 dB. One process on one thread at low priority (resumable: re-run it).
# Logs: $RUNS/fast.log and $RUNS/fast/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs26}
DATA=${SRPIPE_DATA:-../shared/data}
$PY scripts/make_line_art.py "$RUNS/lineart"
[ -f "$RUNS/fast/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale 2 --preset shipped \
  --features 32,32,32,32,32 --kernels 5,3,3,3,3,3 --patch 24 --batch 32 --last-lr-mult 0.1 --steps-per-epoch 500 \
  --degrade video --holdout 20 --val --lossless 0.25 --jpeg 0.05 --clip-frames 6 \
  --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area \
  --lr 1e-3 --epochs 16 --seed 3 --teacher srpipe/default_plugins/espcn/weights/espcn_video_x2.pt --teacher-weight 0.5 \
  --train "$RUNS/lineart" "$DATA/sr/train/T91" "$DATA/sr/train/BSD200" --cache-dir "$RUNS/cache" --resume \
  --out "$RUNS/fast" --export srpipe/default_plugins/espcn/weights/espcn_fast_x2.pt > "$RUNS/fast.log" 2>&1
