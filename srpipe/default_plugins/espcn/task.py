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
    With a ``teacher`` network (distillation), the loss is ``teacher_weight`` parts the
    distance to the teacher's output and the rest the distance to the HR target: a smaller
    network learns what a larger one made of the same degradations, which it fits sooner than
    the targets alone.
    """

    def __init__(self, scale: int, loss: str = "l1", border: int = 0, teacher: nn.Module | None = None,
                 teacher_weight: float = 0.5):
        if loss not in ("l1", "mse"):
            raise ValueError("loss must be 'l1' or 'mse'")
        if not 0 <= teacher_weight <= 1:
            raise ValueError("teacher_weight must be 0-1")
        self.scale, self.border = scale, border
        self.loss_fn = F.l1_loss if loss == "l1" else F.mse_loss
        self.teacher, self.teacher_weight = teacher, teacher_weight
        if teacher is not None:
            teacher.eval().requires_grad_(False)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        lr, hr = batch
        sr = model(lr)
        b = self.border * self.scale
        crop = (lambda t: t[..., b:-b, b:-b]) if b else (lambda t: t)
        loss = self.loss_fn(crop(sr).float(), crop(hr))
        if self.teacher is None:
            return loss
        with torch.no_grad():
            taught = self.teacher(lr).float()
        return (1 - self.teacher_weight) * loss + self.teacher_weight * self.loss_fn(crop(sr).float(), crop(taught))

    def metrics(self, model: nn.Module, batch) -> dict[str, float]:
        lr, hr = batch
        sr = torch.round(model(lr).float().clamp(0, 1) * 255)
        out = {"psnr": 0.0, "ssim": 0.0}
        for a, b in zip(sr[:, 0].cpu().numpy(), (hr[:, 0] * 255).cpu().numpy()):
            out["psnr"] += psnr(a, b, self.scale) / len(sr)
            out["ssim"] += ssim(a, b, self.scale) / len(sr)
        return out
