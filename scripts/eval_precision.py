"""PSNR of the shipped ESPCN models on Set5/Set14 with each reduced-precision backend next to
float32 torch, all run on this machine's CPU (torch-fp16 emulates the CUDA path's arithmetic).

    .venv/bin/python scripts/eval_precision.py ../shared/data/sr/test/Set5 ../shared/data/sr/test/Set14
"""

import sys
import warnings

from srpipe.default_plugins.espcn import TORCH, TORCH_FP16
from srpipe.default_plugins.espcn.evaluate import evaluate_folder
from srpipe.default_plugins.espcn.openvino_backend import OPENVINO_BF16, has_native_bf16
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

warnings.simplefilter("ignore")
backends = [TORCH, TORCH_FP16] + ([OPENVINO_BF16] if has_native_bf16() else [])
print("set     scale  " + "  ".join(f"{b.name:>13}" for b in backends) + "  (PSNR dB, change from torch)")
for folder in sys.argv[1:]:
    for scale in (2, 3, 4):
        scores = []
        for backend in backends:
            upscaler = ESPCNUpscaler(shipped_weights(scale), backend=backend)
            report = evaluate_folder(folder, scale, lambda y: upscaler.upscale(y, bit_depth=8, full_range=False))
            scores.append(report["mean"]["psnr"])
        cells = [f"{scores[0]:13.4f}"] + [f"{s - scores[0]:+13.4f}" for s in scores[1:]]
        print(f"{folder.rstrip('/').split('/')[-1]:7} x{scale}     " + "  ".join(cells), flush=True)
