"""Run a classifier network over a data set: predictions, embeddings, accuracy, confusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@dataclass
class Evaluation:
    """Per-image labels, predictions and embeddings of a whole data set."""

    labels: np.ndarray
    predictions: np.ndarray
    embeddings: np.ndarray

    @property
    def accuracy(self) -> float:
        return float((self.labels == self.predictions).mean())

    def confusion(self, num_classes: int) -> np.ndarray:
        """``[true, predicted]`` counts."""
        matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predictions), 1)
        return matrix


@torch.inference_mode()
def evaluate(network: nn.Module, dataset: Dataset, batch_size: int = 500, device: str = "cpu") -> Evaluation:
    """Classify every image of ``dataset`` (yielding ``(image, label)``)."""
    network = network.to(device).eval()
    labels, predictions, embeddings = [], [], []
    for images, targets in DataLoader(dataset, batch_size=batch_size):
        logits, embedding = network(images.to(device))
        labels.append(targets.numpy())
        predictions.append(logits.argmax(1).cpu().numpy())
        embeddings.append(embedding.float().cpu().numpy())
    return Evaluation(np.concatenate(labels), np.concatenate(predictions), np.concatenate(embeddings))
