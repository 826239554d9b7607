"""ESPCN (Shi et al. 2016): convolutions on the LR image, then a sub-pixel shuffle."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from srpipe.default_plugins.espcn.config import ESPCNConfig

__all__ = ["ESPCN", "ESPCNConfig", "Convolved"]


def _activation(name: str, channels: int) -> nn.Module:
    if name == "prelu":
        return nn.PReLU(channels)
    return nn.Tanh() if name == "tanh" else nn.ReLU()


class ESPCN(nn.Module):
    """(B, C * frames, H, W) in [0, 1] -> (B, C, H*scale, W*scale): with ``config.frames`` above
    1, the channels hold the earlier frames first and the current one, which is upscaled, last."""

    def __init__(self, config: ESPCNConfig):
        super().__init__()
        self.config = config
        widths = config.widths()
        layers: list[nn.Module] = []
        for i, k in enumerate(config.kernels):
            layers.append(
                nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2, padding_mode=config.padding_mode)
            )
            if i < len(config.kernels) - 1:
                layers.append(_activation(config.activation, widths[i + 1]))
        self.body = nn.Sequential(*layers)
        r = config.scale * config.unshuffle
        self.shuffle = nn.PixelShuffle(r) if config.shuffle == "pixelshuffle" else None
        # Start as the bicubic upscale. Not on the meta device, where a checkpoint's shapes are
        # checked: there is nothing to draw, and torch's meta normal_ imports its compiler (seconds).
        if config.residual and not self.body[-1].weight.is_meta:
            nn.init.normal_(self.body[-1].weight, std=1e-3)
            nn.init.zeros_(self.body[-1].bias)

    @property
    def input_channels(self) -> int:
        """Channels of the input :meth:`convolved` takes (the first convolution's, before the
        pixel unshuffle multiplies them)."""
        return self.body[0].in_channels // self.config.unshuffle**2

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
        y = self._shuffled(self.body(self.blocks(x)))
        if self.config.unshuffle == 1:
            return y
        h, w = x.shape[-2:]
        return y[..., :h * self.config.scale, :w * self.config.scale]

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the convolutions take it: with ``unshuffle``, edge-extended to whole
        blocks (always, by 0 where none is needed, so that a traced graph, OpenVINO's or ONNX's,
        pads whatever size it is given) and rearranged into them."""
        u = self.config.unshuffle
        if u == 1:
            return x
        h, w = x.shape[-2:]
        return F.pixel_unshuffle(F.pad(x, (0, (u - w % u) % u, 0, (u - h % u) % u), mode="replicate"), u)

    def _shuffled(self, y: torch.Tensor) -> torch.Tensor:
        if self.shuffle is not None:
            return self.shuffle(y)
        r = self.config.scale * self.config.unshuffle
        return rearrange(y, "b (c r1 r2) h w -> b c (h r1) (w r2)", r1=r, r2=r)

    def upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """The bicubic upscale of the current frame that the residual network adds its output to."""
        x = x[:, x.shape[1] - self.config.channels:]
        return F.interpolate(x, scale_factor=self.config.scale, mode="bicubic", align_corners=False)

    def receptive_radius(self) -> int:
        """How many LR pixels away an input can still change :meth:`convolved`'s output."""
        return self.config.receptive_radius()

    def macs_per_lr_pixel(self) -> int:
        """Multiply-accumulates per LR pixel (convolutions, plus 16 per HR pixel for bicubic)."""
        return self.config.macs_per_lr_pixel()


class Convolved(nn.Module):
    """A module whose ``forward`` is ``network.convolved``: what exporters and converters trace."""

    def __init__(self, network: ESPCN):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.convolved(x)
