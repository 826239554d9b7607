#!/bin/sh
# The temporal ESPCN experiment of issue #25: does a network that also reads the two frames
# before the current one (aligned by the whole picture's shift, srpipe/default_plugins/espcn/temporal.py)
# beat the single-frame one at nearly the same compute (69,888 against 66,688 MAC per LR pixel)?
# Both start from the shipped x2 video weights (the temporal one with its first layer's weights
# shared out over the three frames: on a still picture it computes what they do; see
# training.init_from) and are fine-tuned by the same recipe on the same data: the
# training clips of scripts/train_video.sh (T91 + BSD200 less 20 held-out BSD200 images, pans
# shrunk by several kernels and really encoded by x264), with new variants (--seed 3). The
# temporal one also sees earlier frames cropped misaligned (--mismatch 0.2), as a moving subject
# or a cut gives. Two processes of one thread each, at low priority; resumable (re-run it).
# Logs: $RUNS/t1.log, $RUNS/t3.log and $RUNS/t*/log.jsonl.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs25}
mkdir -p "$RUNS"
COMMON="--scale 2 --preset shipped --features 64,40,40,40,40,40,64 --patch 24 --batch 32 --last-lr-mult 0.1
  --steps-per-epoch 500 --degrade video --holdout 20 --val --lossless 0.25 --jpeg 0.05 --clip-frames 6
  --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area
  --lr 3e-4 --epochs ${EPOCHS:-8} --seed 3 --init srpipe/default_plugins/espcn/weights/espcn_video_x2.pt
  --cache-dir $RUNS/cache --resume"
# The clips are made once, by the first run; the second waits for them.
if [ ! -f "$RUNS/t1/result.json" ]; then
  nice -n 10 $PY scripts/train_espcn.py $COMMON --out "$RUNS/t1" > "$RUNS/t1.log" 2>&1 &
  first=$!
  while ! grep -q "training images" "$RUNS/t1.log" 2>/dev/null; do
    kill -0 $first 2>/dev/null || { echo "the single-frame run stopped: see $RUNS/t1.log" >&2; exit 1; }
    sleep 10
  done
fi
[ -f "$RUNS/t3/result.json" ] || nice -n 10 $PY scripts/train_espcn.py $COMMON --frames 3 --mismatch 0.2 \
  --out "$RUNS/t3" > "$RUNS/t3.log" 2>&1
wait
