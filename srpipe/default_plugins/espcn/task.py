"""The super-resolution task for :class:`srpipe.nn.trainer.Trainer`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srpipe.default_plugins.espcn.metrics import psnr, ssim


class SRTask:
    """L1 or MSE loss on ``(lr, hr)`` batches; Y-PSNR/SSIM (border = scale) for validation.

    ``border`` LR pixels at the edge of each training patch are left out of the loss, so
    that the outputs trained on are those whose receptive field lies inside the patch.
    """

    def __init__(self, scale: int, loss: str = "l1", border: int = 0):
        if loss not in ("l1", "mse"):
            raise ValueError("loss must be 'l1' or 'mse'")
        self.scale, self.border = scale, border
        self.loss_fn = F.l1_loss if loss == "l1" else F.mse_loss

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        lr, hr = batch
        sr = model(lr)
        b = self.border * self.scale
        if b:
            sr, hr = sr[..., b:-b, b:-b], hr[..., b:-b, b:-b]
        return self.loss_fn(sr.float(), hr)

    def metrics(self, model: nn.Module, batch) -> dict[str, float]:
        lr, hr = batch
        sr = torch.round(model(lr).float().clamp(0, 1) * 255)
        out = {"psnr": 0.0, "ssim": 0.0}
        for a, b in zip(sr[:, 0].cpu().numpy(), (hr[:, 0] * 255).cpu().numpy()):
            out["psnr"] += psnr(a, b, self.scale) / len(sr)
            out["ssim"] += ssim(a, b, self.scale) / len(sr)
        return out
