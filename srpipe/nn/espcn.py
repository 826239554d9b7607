"""ESPCN (Shi et al. 2016): convolutions on the LR image, then a sub-pixel shuffle."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

ACTIVATIONS = ("tanh", "relu", "prelu")
SHUFFLES = ("pixelshuffle", "einops")


@dataclass
class ESPCNConfig:
    """An ESPCN-family network.

    ``features[i]`` is the width of hidden layer i and ``kernels`` the kernel size of every
    convolution (one more than ``features``: the last maps to ``channels * scale**2``).
    The defaults are the paper's network (5x5x64, 3x3x32, 3x3xr^2, tanh). With ``residual``
    the network predicts the difference from a bicubic upscale of its input.
    """

    scale: int = 3
    channels: int = 1
    features: tuple[int, ...] = (64, 32)
    kernels: tuple[int, ...] = (5, 3, 3)
    activation: str = "tanh"
    shuffle: str = "pixelshuffle"
    residual: bool = False
    padding_mode: str = "zeros"

    def __post_init__(self):
        self.features = tuple(int(f) for f in self.features)
        self.kernels = tuple(int(k) for k in self.kernels)
        if len(self.kernels) != len(self.features) + 1:
            raise ValueError("kernels needs one entry per convolution: len(features) + 1")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError("kernel sizes must be odd")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}")

    @classmethod
    def from_dict(cls, d: dict) -> "ESPCNConfig":
        """Build from a dict such as a checkpoint's ``config``; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ESPCN config keys: {sorted(unknown)}")
        return cls(**d)


def _activation(name: str, channels: int) -> nn.Module:
    if name == "prelu":
        return nn.PReLU(channels)
    return nn.Tanh() if name == "tanh" else nn.ReLU()


class ESPCN(nn.Module):
    """(B, C, H, W) in [0, 1] -> (B, C, H*scale, W*scale)."""

    def __init__(self, config: ESPCNConfig):
        super().__init__()
        self.config = config
        c, r = config.channels, config.scale
        widths = (c, *config.features, c * r * r)
        layers: list[nn.Module] = []
        for i, k in enumerate(config.kernels):
            layers.append(
                nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2, padding_mode=config.padding_mode)
            )
            if i < len(config.kernels) - 1:
                layers.append(_activation(config.activation, widths[i + 1]))
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(r) if config.shuffle == "pixelshuffle" else None
        if config.residual:  # start as the bicubic upscale
            nn.init.normal_(self.body[-1].weight, std=1e-3)
            nn.init.zeros_(self.body[-1].bias)

    @property
    def last_layer(self) -> nn.Conv2d:
        """The convolution that produces the sub-pixel channels."""
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convolved(x)
        if self.config.residual:
            y = y + self.upsampled(x)
        return y

    def convolved(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutions and the sub-pixel shuffle (without the residual's bicubic)."""
        r = self.config.scale
        y = self.body(x)
        if self.shuffle is not None:
            return self.shuffle(y)
        return rearrange(y, "b (c r1 r2) h w -> b c (h r1) (w r2)", r1=r, r2=r)

    def upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """The bicubic upscale the residual network adds its output to."""
        return F.interpolate(x, scale_factor=self.config.scale, mode="bicubic", align_corners=False)

    def receptive_radius(self) -> int:
        """How many LR pixels away an input can still change :meth:`convolved`'s output."""
        return sum(k // 2 for k in self.config.kernels)

    def macs_per_lr_pixel(self) -> int:
        """Multiply-accumulates per LR pixel (convolutions, plus 16 per HR pixel for bicubic)."""
        macs = sum(m.weight.numel() for m in self.body if isinstance(m, nn.Conv2d))
        if self.config.residual:
            macs += 16 * self.config.channels * self.config.scale**2
        return macs


class Convolved(nn.Module):
    """A module whose ``forward`` is ``network.convolved``: what exporters and converters trace."""

    def __init__(self, network: ESPCN):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.convolved(x)
