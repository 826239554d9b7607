"""``ESPCNUpscaler``: a trained ESPCN checkpoint applied to video luma planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(scale: int) -> Path:
    """The path of the shipped ESPCN weights for ``scale``."""
    return WEIGHTS_DIR / f"espcn_x{scale}.pt"


class ESPCNUpscaler:
    """Upscale batches of luma planes with an ESPCN checkpoint.

    The network works on 8-bit limited-range luma / 255. Other bit depths are scaled to that
    range and full-range input is mapped to limited range (Y_lim = 16 + Y_full * 219/255 at
    8-bit scale) before the network, and back after.
    """

    def __init__(self, checkpoint: str | Path | dict, device: str = "cpu", batch_size: int = 4):
        source = "checkpoint" if isinstance(checkpoint, dict) else str(checkpoint)
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.network = network_from_checkpoint(ckpt, source).to(self.device).eval()
        self.scale: int = self.network.config.scale
        self.meta: dict = ckpt["meta"]
        self.batch_size = batch_size

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """(N, H, W) uint8 (8-bit) or uint16 (10/12/16-bit) -> (N, H*s, W*s), same dtype."""
        if luma.ndim != 3:
            raise ValueError(f"luma must be (N, H, W), got shape {luma.shape}")
        expected = np.uint8 if bit_depth == 8 else np.uint16
        if luma.dtype != expected or not 8 <= bit_depth <= 16:
            raise ValueError(f"{bit_depth}-bit luma must be {np.dtype(expected).name}, got {luma.dtype}")
        maxval = (1 << bit_depth) - 1
        step = float(1 << (bit_depth - 8))  # one 8-bit code value in this bit depth
        n, h, w = luma.shape
        s = self.scale
        out = np.empty((n, h * s, w * s), dtype=luma.dtype)
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                x = torch.from_numpy(luma[i:i + self.batch_size].astype(np.float32)).to(self.device)
                if full_range:
                    x = (16 + x * (219.0 / maxval)) / 255.0
                else:
                    x = x / (255.0 * step)
                y = self.network(x[:, None])[:, 0]
                if full_range:
                    y = (y * 255.0 - 16) * (maxval / 219.0)
                else:
                    y = y * (255.0 * step)
                y = torch.round(y).clamp_(0, maxval)
                out[i:i + self.batch_size] = y.cpu().numpy().astype(luma.dtype)
        return out
