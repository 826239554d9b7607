"""An srpipe plugin that adds the ``nearest`` upscaler: each pixel repeated scale x scale times."""

import numpy as np

from srpipe import hookimpl
from srpipe.models import ModelSpec


class NearestUpscaler:
    def __init__(self, scale: int):
        self.scale = scale

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """(N, H, W) -> (N, H*scale, W*scale), same dtype."""
        return luma.repeat(self.scale, axis=1).repeat(self.scale, axis=2)


def load(scale: int, device: str = "cpu", weights=None) -> NearestUpscaler:
    return NearestUpscaler(scale)


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="nearest",
            scales=(2, 3, 4, 8),
            description="Nearest neighbour: every pixel repeated (blocky, exact)",
            load=load,
            uses_gpu=False,  # numpy on the CPU: --device auto never asks for a GPU
        )
    )
