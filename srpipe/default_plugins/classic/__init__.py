"""Built-in classical upscalers: bicubic (a = -0.75) and Lanczos (a = 4).

On the CPU, limited-range video goes through FFmpeg's ``scale`` filter (libswscale) with
those kernels, so srpipe's output equals ``ffmpeg -vf scale=...``'s at ffmpeg's speed;
full-range planes through OpenCV's ``cv2.resize``, exact where swscale's clipped
intermediate is not (``srpipe.resize.PlaneScaler``). On CUDA the same kernels run in torch
as two matrix products per batch, with the sampling grid (pixel centres) and edge rule
(replicate) of OpenCV and swscale. They run as fast as the decoder on the CPU, so
``--device auto`` keeps them there (``uses_gpu=False``); ``--device cuda`` runs them on a GPU
and encodes with NVENC.
"""

from __future__ import annotations

from srpipe import hookimpl
from srpipe.models import ModelSpec

SCALES = (2, 3, 4)
DESCRIPTIONS = {
    "bicubic": "Bicubic interpolation (Keys cubic, a = -0.75, as OpenCV INTER_CUBIC)",
    "lanczos": "Lanczos interpolation with a = 4 (8x8 taps, OpenCV INTER_LANCZOS4)",
}


def _loader(method: str):
    def load(scale: int, device: str = "cpu", weights=None):
        from srpipe.default_plugins.classic.upscaler import ClassicUpscaler  # NumPy: not for --help

        return ClassicUpscaler(method, scale, device)

    return load


@hookimpl
def register_models(register):
    for method, description in DESCRIPTIONS.items():
        register(ModelSpec(name=method, scales=SCALES, description=description, load=_loader(method), uses_gpu=False))
