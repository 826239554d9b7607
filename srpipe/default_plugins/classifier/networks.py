"""Image classifiers: a two-block CNN (MNIST-sized) and LeNet-5 (CIFAR-10-sized).

Both take images in [0, 1] of shape (B, C, H, W) and return ``(logits, embedding)``:
the class scores and the flattened features the last linear layer sees (for t-SNE plots).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn


def _from_dict(cls, d: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**d)


@dataclass
class SmallCNNConfig:
    """Two blocks of (conv kernel x kernel, 'same' padding, ReLU, 2x2 max-pool), then one linear layer."""

    in_channels: int = 1
    image_size: int = 28
    features: tuple[int, int] = (16, 32)
    kernel: int = 5
    num_classes: int = 10
    dropout: float = 0.0

    def __post_init__(self):
        self.features = tuple(int(f) for f in self.features)
        if len(self.features) != 2:
            raise ValueError("features needs two widths, one per conv block")
        if self.kernel % 2 == 0:
            raise ValueError("kernel size must be odd")
        if self.image_size % 4:
            raise ValueError("image_size must be a multiple of 4 (two 2x2 poolings)")

    from_dict = classmethod(_from_dict)


class SmallCNN(nn.Module):
    """conv-ReLU-pool, conv-ReLU-pool, linear."""

    def __init__(self, config: SmallCNNConfig):
        super().__init__()
        self.config = config
        c1, c2 = config.features
        k = config.kernel
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, k, padding=k // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, k, padding=k // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c2 * (config.image_size // 4) ** 2, config.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.features(x)
        return self.head(self.dropout(embedding)), embedding


@dataclass
class LeNetConfig:
    """LeNet-5 with ReLU and max-pooling: 6 and 16 filters of 5x5 (no padding), 120-84-classes."""

    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10

    def __post_init__(self):
        if self.image_size < 16 or self.image_size % 4:
            raise ValueError("image_size must be a multiple of 4, at least 16")

    from_dict = classmethod(_from_dict)


class LeNet(nn.Module):
    """conv-ReLU-pool, conv-ReLU-pool, then 120-84-classes fully connected."""

    def __init__(self, config: LeNetConfig):
        super().__init__()
        self.config = config
        side = ((config.image_size - 4) // 2 - 4) // 2
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        )
        self.head = nn.Linear(84, config.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.features(x)
        return self.head(embedding), embedding
