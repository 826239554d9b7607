"""The classification task for :class:`srpipe.nn.trainer.Trainer`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationTask:
    """Cross-entropy on ``(images, labels)`` batches; accuracy and loss for validation.

    The networks return ``(logits, embedding)``; only the logits are used here.
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        images, labels = batch
        logits, _ = model(images)
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def metrics(self, model: nn.Module, batch) -> dict[str, float]:
        images, labels = batch
        logits, _ = model(images)
        logits = logits.float()
        return {
            "accuracy": (logits.argmax(1) == labels).float().mean().item(),
            "loss": F.cross_entropy(logits, labels).item(),
        }
