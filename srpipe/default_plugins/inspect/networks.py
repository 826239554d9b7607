"""Get the torch network of a registered model, the input it takes, and an image shaped for it."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from srpipe.errors import SrpipeError
from srpipe.models import ModelRegistry

DEFAULT_SIDE = 64  # for fully convolutional networks (upscalers), which take any size


def resolve_model(models: ModelRegistry, name: str, scale: int | None = None):
    """``(spec, scale)`` for ``name``, which may carry the scale as in ``espcn-x2``."""
    found = re.fullmatch(r"(.+)-x(\d+)", name)
    if name not in models and found and found[1] in models:
        if scale is not None and scale != int(found[2]):
            raise SrpipeError(f"{name} and --scale {scale} disagree; give one of them")
        name, scale = found[1], int(found[2])
    spec = models.get(name)
    if spec.scales:
        scale = models.resolve_scale(spec, scale)
    elif scale is not None:
        raise SrpipeError(f"model {name!r} has no scales; leave out the scale")
    return spec, scale


def load_network(models: ModelRegistry, name: str, scale: int | None = None) -> tuple[nn.Module, str]:
    """The ``torch.nn.Module`` behind model ``name`` (``ModelSpec.network``) and a display name."""
    spec, scale = resolve_model(models, name, scale)
    if spec.network is None:
        raise SrpipeError(f"model {spec.name!r} (plugin {spec.plugin}) has no torch network to inspect; "
                          "only models whose ModelSpec sets 'network' can be inspected")
    network = spec.network(scale)
    if not isinstance(network, nn.Module):
        raise SrpipeError(f"model {spec.name!r}: its network() returned {type(network).__name__}, "
                          "not a torch.nn.Module; report this to the plugin's author")
    named = not scale or spec.name.endswith(f"-x{scale}")  # espcn-x2 is x2 already
    return network, spec.name if named else f"{spec.name}-x{scale}"


def default_input_shape(network: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) from the network's config (``in_channels``/``channels``, ``image_size``), else
    from its first convolution, with a side of 64 for networks that take any size."""
    config = getattr(network, "config", None)
    channels = getattr(config, "in_channels", None) or getattr(config, "channels", None)
    if channels is None:
        first = next((m for m in network.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise SrpipeError("cannot tell what input this network takes; pass --input-size C,H,W")
        channels = first.in_channels
    side = getattr(config, "image_size", None) or DEFAULT_SIDE
    return int(channels), int(side), int(side)


FEATURE_MAP_SIDE = 128  # 8x8 maps of it fill the figure (at most 1400 pixels high): maps are shrunk to it


def takes_any_size(network: nn.Module) -> bool:
    """Whether the network is fully convolutional (no fixed ``image_size``, no linear layer)."""
    fixed = getattr(getattr(network, "config", None), "image_size", None)
    return fixed is None and not any(isinstance(m, nn.Linear) for m in network.modules())


def image_tensor(path, channels: int, size: tuple[int, int] | None) -> tuple[torch.Tensor, list[str]]:
    """The image at ``path`` as a (1, C, H, W) tensor in [0, 1], resized to ``size`` (H, W) unless
    None, with notes on how it was converted (colour, size)."""
    from srpipe.images import image_size, read_rgb8
    from srpipe.memory import default_max_pixels
    from srpipe.nn.inputs import to_model_input

    path = Path(path)
    if not path.is_file():
        raise SrpipeError(f"{path} is not a file; give an image for --feature-maps")
    stored = image_size(str(path))
    if stored is not None and stored[0] * stored[1] > default_max_pixels():  # before decoding it
        raise SrpipeError(f"{path} is {stored[0]}x{stored[1]}, larger than --feature-maps reads; crop or shrink it")
    pixels = read_rgb8(path)
    height, width = size or fitted(pixels.shape[:2], FEATURE_MAP_SIDE)
    array, notes = to_model_input(pixels, (channels, height, width), dark_background=False)
    return torch.from_numpy(array)[None], notes


def fitted(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) of ``shape`` shrunk, if need be, to at most ``side`` pixels on its longer side."""
    height, width = shape
    factor = min(1.0, side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))
