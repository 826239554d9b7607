#!/usr/bin/env bash
# The GPU path in one run (a few minutes): what a session lent a GPU runs first, and records.
#   1. the GPU and torch as srpipe sees them (srpipe --version);
#   2. tests/core/test_cuda.py: ESPCN (torch, torch-fp16, torch-compile: it compiles one 720p shape first)
#      and bicubic/lanczos on CUDA against the CPU path;
#   3. srpipe bench on the bundled 720p clip with --device cuda, torch and torch-fp16, bicubic beside;
#   4. NVENC: srpipe upscale --device cuda with no --codec, and the encoder it reports;
#   5. scripts/gpu_speed.py: the network alone at 1920x1080 in each way torch runs it (float16,
#      bfloat16, channels_last, cudnn.benchmark, a CUDA graph, torch.compile), start-up against
#      torch's floor, and the 540p -> 1080p pipeline of espcn against bicubic's with the GPU's busy share,
#      then twice with --backend torch-compile (compiling, then from what it kept: a minute or two more)
#      (and, with py-spy in .whl/, where its threads spent their time);
# then one summary. Each step's full output goes to $OUT (or ./gpu-check) as well.
#
# The GPU machine has python3 with torch, OpenCV, pluggy, click and pytest, but no PyAV. Before
# calling it, download PyAV's wheel for its Python 3.12 into .whl/ (ignored by git; carry it):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl 'av>=14,<19'
# and py-spy's program (a static binary), to see where the pipeline's threads spend their time:
#   cp .venv/bin/py-spy .whl/        # or: pip download py-spy, and unzip its bin/py-spy from the wheel
# and run, with carry [".whl"]:  bash scripts/gpu_check.sh
# On a machine without a GPU it says so and stops after step 1.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu-check}
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/srpipe-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/srpipe-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # srpipe from this tree, installed or not
export PYTHONUNBUFFERED=1
SRPIPE="$PY -m srpipe"
summary=()
step() {  # step NAME COMMAND...: run, keep the log, remember the outcome
    local name=$1; shift
    local started=$SECONDS
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$LOGS/$name.log"
    local code=${PIPESTATUS[0]}
    summary+=("$name: exit $code, $((SECONDS - started)) s")
    return "$code"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$LOGS/nvidia-smi.log"
step version $SRPIPE --version
if ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "No CUDA GPU is usable here: nothing more to check."
    exit 1
fi
# in one process (-o addopts= drops the workers pyproject.toml asks for): that machine has no pytest-xdist
step test_cuda $PY -m pytest -q -p no:cacheprovider -o addopts= tests/core/test_cuda.py
step bench $SRPIPE bench samples/bigbuckbunny.mp4 -m espcn -m bicubic --device cuda --backend torch \
    --backend torch-fp16 --batch-size 8 --repeats 2 --no-startup
step nvenc $SRPIPE upscale samples/bigbuckbunny.mp4 -o "$LOGS/nvenc.mp4" --device cuda -m espcn --overwrite --json
encoder=$($PY -c "import json, sys; print(json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][-1])['encoder'])" \
    "$LOGS/nvenc.log" 2>&1)  # the summary line; warnings share the log
summary+=("encoder with --device cuda and no --codec: $encoder")
rm -f "$LOGS/nvenc.mp4"
profile=()
[ -x .whl/py-spy ] && profile=(--py-spy .whl/py-spy --profile-out "$LOGS/pipeline-profile.txt")
step speed $PY scripts/gpu_speed.py --device cuda --json "$LOGS/gpu_speed.json" "${profile[@]}"

echo "=== summary"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
printf '%s\n' "${summary[@]}"
grep -E "passed|failed|skipped" "$LOGS/test_cuda.log" | tail -1
grep -E "^(upscale|end-to-end)|vs " "$LOGS/bench.log"
grep -E "^(network|startup|pipeline)" "$LOGS/speed.log"
