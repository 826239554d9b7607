"""Convolutions trained as several linear branches and run as one (structural
re-parameterisation).

A small network learns better when each of its convolutions is trained as a sum of branches
than as one kernel, though the sum is itself one convolution: ECBSR's edge-oriented block
(Zhang, Zeng and Zhang, ACM MM 2021) adds to a KxK kernel a 1x1 expansion followed by a KxK
kernel, and 1x1 convolutions followed by Sobel and Laplacian filters with learned scales.
:class:`ExpandedConv2d` holds those branches' parameters and folds them into one kernel on
every forward pass (as OREPA, Hu et al. CVPR 2022, does), so training costs what the plain
convolution costs and the gradients are the branches' own. :func:`folded` gives the plain
network, which is what checkpoints hold: a network trained this way ships, runs and is
quantized as any other.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ExpandedConv2d", "expand", "folded", "is_expanded"]

_EDGE_FILTERS = torch.tensor([
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],  # Sobel, x
    [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],  # Sobel, y
    [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],  # Laplacian
])


class ExpandedConv2d(nn.Module):
    """A KxK convolution (K odd, at least 3) trained as ECBSR's branches.

    It starts as the convolution it is made from (the new branches start at zero), so
    expanding a trained or initialised network changes nothing until training moves it. The
    branches have no bias of their own: each is linear in the input, so that their sum is one
    kernel exactly, whatever the padding.
    """

    def __init__(self, conv: nn.Conv2d, expansion: int = 2):
        super().__init__()
        out_channels, in_channels, k, _ = conv.weight.shape
        self.padding = conv.padding
        self.padding_mode = conv.padding_mode
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None
        middle = out_channels * expansion
        # 1x1 to `middle` channels, then KxK back: the kernel is their product
        self.reduce = nn.Parameter(torch.empty(middle, in_channels, 1, 1))
        nn.init.kaiming_uniform_(self.reduce, a=5**0.5)
        self.spread = nn.Parameter(torch.zeros(out_channels, middle, k, k))
        # a 1x1 convolution before each fixed edge filter, and a learned scale per output channel
        self.edge_mix = nn.Parameter(torch.empty(len(_EDGE_FILTERS), out_channels, in_channels))
        nn.init.kaiming_uniform_(self.edge_mix, a=5**0.5)
        self.edge_scale = nn.Parameter(torch.zeros(len(_EDGE_FILTERS), out_channels))
        border = (k - 3) // 2
        self.register_buffer("edge_filters", F.pad(_EDGE_FILTERS, (border,) * 4), persistent=False)

    def kernel(self) -> torch.Tensor:
        """The one kernel the branches sum to."""
        through_middle = torch.einsum("omhw,mi->oihw", self.spread, self.reduce[:, :, 0, 0])
        edges = torch.einsum("eo,eoi,ehw->oihw", self.edge_scale, self.edge_mix, self.edge_filters)
        return self.weight + through_middle + edges

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode == "zeros":
            return F.conv2d(x, self.kernel(), self.bias, padding=self.padding)
        p = self.padding
        return F.conv2d(F.pad(x, (p[1], p[1], p[0], p[0]), mode=self.padding_mode), self.kernel(), self.bias)

    def folded(self) -> nn.Conv2d:
        """The plain convolution that computes what this one does."""
        out_channels, in_channels, k, _ = self.weight.shape
        # not initialised: drawing its weights would move torch's random numbers, and a run that
        # saves a checkpoint must draw what it would without (resume equals an unbroken run)
        conv = nn.utils.skip_init(nn.Conv2d, in_channels, out_channels, k, padding=self.padding,
                                  padding_mode=self.padding_mode, bias=self.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(self.kernel())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.weight.device)


def _expandable(conv: nn.Conv2d) -> bool:
    k = conv.kernel_size
    return (k[0] == k[1] and k[0] >= 3 and k[0] % 2 == 1 and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == 1 and conv.padding == (k[0] // 2, k[0] // 2))


def expand(model: nn.Module) -> nn.Module:
    """Replace, in place, each of ``model``'s square KxK convolutions (K odd, at least 3, stride 1,
    'same' padding) by an :class:`ExpandedConv2d` that starts as it; returns ``model``. 1x1 and
    other convolutions stay as they are."""
    for name, child in model.named_children():
        if isinstance(child, nn.Conv2d) and _expandable(child):
            setattr(model, name, ExpandedConv2d(child))
        else:
            expand(child)
    return model


def is_expanded(model: nn.Module) -> bool:
    """Whether ``model`` holds any :class:`ExpandedConv2d`."""
    return any(isinstance(m, ExpandedConv2d) for m in model.modules())


def folded(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each :class:`ExpandedConv2d` folded into a plain convolution."""
    model = copy.deepcopy(model)

    def fold(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, ExpandedConv2d):
                setattr(module, name, child.folded())
            else:
                fold(child)

    fold(model)
    return model
