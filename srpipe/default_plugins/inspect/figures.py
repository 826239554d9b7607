"""PNG figures of a network: learned conv kernels, conv activations, receptive fields."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn
from torch.nn import functional as F

from srpipe.default_plugins.inspect.layers import Summary
from srpipe.default_plugins.inspect.networks import FEATURE_MAP_SIDE, fitted
from srpipe.plotting import new_figure

MAX_FILTERS, MAX_INPUTS, MAX_MAPS = 32, 16, 64


def mosaic(tiles: np.ndarray, gap: int = 1) -> np.ndarray:
    """(rows, cols, h, w) -> one (rows*(h+gap)-gap, cols*(w+gap)-gap) image, NaN between tiles."""
    rows, cols, h, w = tiles.shape
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[r, c]
    return out


def _tick_positions(count: int, size: int, gap: int = 1, most: int = 16) -> tuple[np.ndarray, list[str]]:
    """Centres of every few tiles along one side of a mosaic, with their indices as labels."""
    step = max(1, math.ceil(count / most))
    index = np.arange(0, count, step)
    return index * (size + gap) + (size - 1) / 2, [str(i) for i in index]


def _file_name(index: int, layer_name: str, kind: str) -> str:
    return f"{kind}_{index:02d}_{layer_name.replace('.', '-') or 'network'}.png"


def conv_layers(network: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(name, m) for name, m in network.named_modules() if isinstance(m, nn.Conv2d)]


def _mosaic_figure(image, tile_shape, rows, cols, cmap, vmin, vmax, bar_label, title, xlabel, ylabel,
                   col_ticks=True):
    h, w = tile_shape
    aspect = image.shape[1] / image.shape[0]
    height = int(np.clip(70 * rows, 420, 1400))
    figure = new_figure(int(np.clip(height * aspect + 220, 520, 2000)), height + 120)
    axes = figure.add_subplot()
    shown = axes.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    figure.colorbar(shown, ax=axes, label=bar_label, fraction=0.046, pad=0.03)
    if col_ticks:
        axes.set_xticks(*_tick_positions(cols, w))
        axes.set_yticks(*_tick_positions(rows, h))
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    figure.tight_layout()
    return figure


def filter_figures(network: nn.Module, model: str, out_dir: str | Path) -> list:
    """(path, draw) of one PNG per conv layer (:func:`srpipe.plotting.save_figures`): its kernels,
    one row per output filter and one column per input channel, on a blue-white-red scale
    centred on zero."""
    return [(Path(out_dir) / _file_name(index, name, "filters"), functools.partial(_filters_figure, name, conv, model))
            for index, (name, conv) in enumerate(conv_layers(network))]


def _filters_figure(name: str, conv: nn.Conv2d, model: str):
    weights = conv.weight.detach().float().cpu().numpy()
    out_channels, in_channels, kh, kw = weights.shape
    shown = weights[:MAX_FILTERS, :MAX_INPUTS]
    limit = float(np.abs(shown).max()) or 1.0
    rows, cols = shown.shape[:2]
    title = (f"{model}: {name} kernels, Conv2d {in_channels}->{out_channels}, {kh}x{kw}\n"
             f"showing {rows} of {out_channels} filters x {cols} of {in_channels} input channels")
    return _mosaic_figure(mosaic(shown), (kh, kw), rows, cols, "RdBu_r", -limit, limit, "weight",
                          title, "input channel", "output filter")


def conv_activations(network: nn.Module, image: torch.Tensor,
                     side: int = FEATURE_MAP_SIDE) -> list[tuple[str, tuple[int, ...], torch.Tensor]]:
    """(name, full shape, what is kept) of each conv layer's output for ``image`` (1, C, H, W), in
    the order they run. Only what a figure shows is kept, as each layer runs: its first
    ``MAX_MAPS`` channels, shrunk by area to at most ``side`` pixels a side. Every activation kept
    whole would take layers x channels x H x W floats, tens of gigabytes for a large input."""
    outputs = []

    def keep(module, args, out, name):
        maps = out.detach()[:, :MAX_MAPS].float()
        outputs.append((name, tuple(out.shape[1:]), F.adaptive_avg_pool2d(maps, fitted(maps.shape[-2:], side))))

    hooks = [conv.register_forward_hook(lambda m, args, out, name=name: keep(m, args, out, name))
             for name, conv in conv_layers(network)]
    was_training = network.training
    try:
        network.eval()
        with torch.no_grad():
            network(image)
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    return outputs


def feature_map_figures(network: nn.Module, image: torch.Tensor, model: str, image_name: str,
                        out_dir: str | Path) -> list:
    """(path, draw) of one PNG per conv layer's output for ``image``, the network run here
    (:func:`srpipe.plotting.save_figures`): its activation maps, channels tiled row by row."""
    return [(Path(out_dir) / _file_name(index, name, "features"),
             functools.partial(_feature_maps_figure, name, shape, kept, model, image_name))
            for index, (name, shape, kept) in enumerate(conv_activations(network, image))]


def _feature_maps_figure(name: str, shape: tuple[int, ...], kept: torch.Tensor, model: str, image_name: str):
    channels, height, width = shape
    shown = kept[0].cpu().numpy()
    h, w = shown.shape[1:]
    cols = math.ceil(math.sqrt(len(shown)))
    rows = math.ceil(len(shown) / cols)
    tiles = np.full((rows * cols, h, w), np.nan, dtype=np.float32)
    tiles[:len(shown)] = shown
    limit = float(np.abs(shown).max()) or 1.0
    shrunk = f" shrunk to {w}x{h}" if (h, w) != (height, width) else ""
    title = (f"{model}: {name} activations for {image_name}\n"
             f"{channels} channels of {width}x{height}, showing {len(shown)}{shrunk}, tiled row by row")
    return _mosaic_figure(mosaic(tiles.reshape(rows, cols, h, w)), (h, w), rows, cols, "RdBu_r",
                          -limit, limit, "activation", title, "x (pixels), channels left to right",
                          "y (pixels), then next row of channels", col_ticks=False)


def receptive_field_figure(summary: Summary, out_dir: str | Path) -> tuple:
    """(path, draw) of receptive_fields.png (:func:`srpipe.plotting.save_figures`): the input grid
    with the receptive field of each spatial layer's centre unit drawn on it."""
    return Path(out_dir) / "receptive_fields.png", functools.partial(_receptive_fields_figure, summary)


def _receptive_fields_figure(summary: Summary):
    _, height, width = summary.input_shape
    layers = [layer for layer in summary.layers if layer.window is not None and layer.kernel is not None]
    cols = min(3, max(len(layers), 1))
    rows = max(1, math.ceil(len(layers) / cols))
    figure = new_figure(380 * cols + 40, 400 * rows + 80)
    for i, layer in enumerate(layers):
        axes = figure.add_subplot(rows, cols, i + 1)
        unit = (layer.output_shape[1] // 2, layer.output_shape[2] // 2)
        (top, bottom), (left, right) = layer.window.bounds(unit)
        axes.add_patch(Rectangle((-0.5, -0.5), width, height, facecolor="whitesmoke", edgecolor="black"))
        axes.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                 facecolor="tab:orange", alpha=0.5, edgecolor="tab:red", linewidth=1.5))
        axes.plot((left + right) / 2, (top + bottom) / 2, "k+", markersize=8)
        if max(height, width) <= 64:
            axes.set_xticks(np.arange(-0.5, width, 1), minor=True)
            axes.set_yticks(np.arange(-0.5, height, 1), minor=True)
            axes.grid(which="minor", color="lightgrey", linewidth=0.4)
        axes.set_xlim(-0.5 - 0.1 * width, width - 0.5 + 0.1 * width)
        axes.set_ylim(height - 0.5 + 0.1 * height, -0.5 - 0.1 * height)
        axes.set_aspect("equal")
        k = "x".join(map(str, layer.kernel))
        axes.set_title(f"{layer.name} {layer.type} k{k} s{layer.stride[0]} d{layer.dilation[0]}\n"
                       f"RF {layer.receptive_field[0]}x{layer.receptive_field[1]} of unit {unit}", fontsize=9)
        axes.set_xlabel("x (input pixel)")
        axes.set_ylabel("y (input pixel)")
    figure.suptitle(f"{summary.model or summary.network}: receptive field of the centre unit of each layer "
                    f"on the {width}x{height} input\nr_k = r_(k-1) + (k_eff - 1) * prod(strides before k)", fontsize=11)
    figure.tight_layout()
    return figure
