#!/bin/sh
# Train the x2 weights `-m espcn` runs on H.264 video by its mean quantizer, at middling and low bit rates (issue #25):
# espcn_midbitrate_x2.pt (espcn-midbitrate, crf 17-29) and espcn_lowbitrate_x2.pt (espcn-lowbitrate,
# crf 25-40). Each is the fast network (scripts/train_fast.sh: same layers, 38,880 MAC per LR pixel,
# so tile reuse and int8 run them as they run it) fine-tuned on the x264 pan clips of its crf range,
# with no lossless clips and no teacher: the fast network learns from the video weights over every
# bit rate, lossless included, and what that costs at coarse quantizers is what these take back.
# Data as the fast network's: T91 + BSD200 less 20 held-out BSD200 images (scored every epoch) and 80
# generated pictures of line art and screen text, some JPEG stills. One process on one thread at low
# priority each, the two side by side (resumable: re-run it). Lengths chosen on the evaluation set's
# val split (the model card). Logs: $RUNS/midbitrate.log, $RUNS/lowbitrate.log and
# $RUNS/*/log.jsonl. Then: python scripts/quantize_espcn.py srpipe/default_plugins/espcn/weights/espcn_{midbitrate,lowbitrate}_x2.pt
# The shipped checkpoints came from these commands run by hand with other --out folders (their meta["command"])
# and were copied into the weights folder; here --export writes them there.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 PYTHONPATH=.
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-/work/runs27}
DATA=${SRPIPE_DATA:-../shared/data}
$PY scripts/make_line_art.py "$RUNS/lineart"
train() {  # name, crf range, learning rate, epochs, seed
  [ -f "$RUNS/$1/result.json" ] || nice -n 10 $PY scripts/train_espcn.py --scale 2 --preset shipped \
    --features 32,32,32,32,32 --kernels 5,3,3,3,3,3 --patch 24 --batch 32 --last-lr-mult 0.1 --steps-per-epoch 500 \
    --degrade video --holdout 20 --val --lossless 0 --jpeg 0.05 --clip-frames 6 --crf-range "$2" \
    --down-kernels swscale-bicubic,swscale-bicubic,swscale-bicubic,matlab-bicubic,lanczos,opencv-cubic,area \
    --lr "$3" --epochs "$4" --seed "$5" --init srpipe/default_plugins/espcn/weights/espcn_fast_x2.pt \
    --train "$RUNS/lineart" "$DATA/sr/train/T91" "$DATA/sr/train/BSD200" --cache-dir "$RUNS/cache" --resume \
    --out "$RUNS/$1" --export "srpipe/default_plugins/espcn/weights/espcn_$1_x2.pt" > "$RUNS/$1.log" 2>&1
}
train midbitrate 17,29 3e-4 8 8 &
first=$!
train lowbitrate 25,40 5e-4 20 9
wait $first
