#!/usr/bin/env bash
# Install srpipe into .venv and upscale the bundled sample clip to out/bigbuckbunny_x2.mp4.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e ".[test]"
# An editable install leaves srpipe's own modules uncompiled; compile them now, so that no run
# pays for it (where PYTHONDONTWRITEBYTECODE is set, every run would).
.venv/bin/python -m compileall -q srpipe
mkdir -p out
.venv/bin/srpipe upscale samples/bigbuckbunny.mp4 -o out/bigbuckbunny_x2.mp4 --overwrite
