"""Per-layer shapes, parameters, receptive fields and multiply-accumulates of a network.

Shapes come from O = floor((I - K_eff + 2P) / S) + 1 with K_eff = D * (K - 1) + 1 and are
checked against a real forward pass. Receptive fields follow
r_k = r_(k-1) + (K_eff - 1) * j_(k-1), j_k = j_(k-1) * S_k (j: the product of the strides
before layer k), in input pixels, taking the layers as a chain in the order they run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import torch
from torch import nn

from srpipe.errors import SrpipeError

POOLS = (nn.MaxPool2d, nn.AvgPool2d)
FULL = "full"  # the receptive field is the whole input
SHAPE_PRESERVING = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU,
                    nn.Dropout, nn.Dropout2d, nn.BatchNorm2d, nn.Identity, nn.Softmax)


@dataclass
class Window:
    """What one output unit sees: ``size`` input pixels, ``jump`` input pixels between
    neighbouring units, ``start`` the centre of the first unit (all per axis: height, width)."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[Fraction, Fraction] = (Fraction(1), Fraction(1))
    start: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))

    def after(self, kernel, stride, padding, dilation) -> "Window":
        """The window after a convolution or pooling layer."""
        size, jump, start = [], [], []
        for axis in range(2):
            k_eff = dilation[axis] * (kernel[axis] - 1) + 1
            size.append(self.size[axis] + (k_eff - 1) * self.jump[axis])
            start.append(self.start[axis] + (Fraction(k_eff - 1, 2) - padding[axis]) * self.jump[axis])
            jump.append(self.jump[axis] * stride[axis])
        return Window(tuple(int(s) for s in size), tuple(jump), tuple(start))

    def bounds(self, unit: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (first, last) input pixel, per axis, seen by output unit ``unit`` (row, column)."""
        out = []
        for axis in range(2):
            centre = self.start[axis] + unit[axis] * self.jump[axis]
            half = Fraction(self.size[axis] - 1, 2)
            out.append((float(centre - half), float(centre + half)))
        return tuple(out)


@dataclass
class Layer:
    """One leaf module, as it ran."""

    name: str
    type: str
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    padding: tuple[int, ...] | None
    dilation: tuple[int, ...] | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    formula_shape: tuple[int, ...] | None
    weights: int
    biases: int
    macs: int
    receptive_field: tuple[int, int] | None
    window: Window | None = field(default=None, repr=False)

    @property
    def shape_checked(self) -> bool | None:
        """Whether the formula's output shape equals the forward pass's (None: no formula)."""
        return None if self.formula_shape is None else self.formula_shape == self.output_shape


@dataclass
class Summary:
    """A network's layers and totals for an input of ``input_shape`` (C, H, W)."""

    model: str
    network: str
    input_shape: tuple[int, ...]
    layers: list[Layer]
    parameters: int
    weights: int
    biases: int
    macs: int

    def as_dict(self) -> dict:
        d = asdict(self)
        for layer, row in zip(self.layers, d["layers"]):
            row.pop("window")
            row["shape_checked"] = layer.shape_checked
        return d


def _receptive_field(window, input_shape) -> tuple[int, int] | None:
    if isinstance(window, Window):
        return window.size
    return tuple(input_shape[1:3]) if window == FULL and len(input_shape) == 3 else None


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _geometry(module: nn.Module):
    """(kernel, stride, padding, dilation) of a conv or pooling layer, as pairs."""
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    dilation = _pair(getattr(module, "dilation", 1))
    padding = module.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return kernel, stride, _pair(padding), dilation


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                     ceil: bool = False) -> int:
    """O = (I - K_eff + 2P) / S + 1, rounded down (up with ``ceil``, as pooling's ceil_mode)."""
    k_eff = dilation * (kernel - 1) + 1
    steps = Fraction(size - k_eff + 2 * padding, stride)
    return (math.ceil(steps) if ceil else math.floor(steps)) + 1


def _record_forward(network: nn.Module, input_shape: tuple[int, ...]) -> list:
    """(name, module, input shape, output shape) of every leaf module with one tensor in and
    out, in call order. The pass runs on torch's meta device, which follows shapes and holds no
    data: a large --input-size took gigabytes of activations for a table of shapes. It runs on
    the CPU where a layer has no meta kernel, and where the input does not fit the network, to
    tell why as torch's own kernels tell it (the meta ones say less), at the layer that refuses it."""
    try:
        return _recorded(copy.deepcopy(network).to("meta"), input_shape, "meta")
    except (NotImplementedError, SrpipeError):
        return _recorded(network, input_shape, "cpu")


def _recorded(network: nn.Module, input_shape: tuple[int, ...], device: str) -> list:
    calls = []
    names = {module: name for name, module in network.named_modules()}

    def record(module, args, out):
        if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            calls.append((names[module], module, tuple(args[0].shape[1:]), tuple(out.shape[1:])))

    hooks = [module.register_forward_hook(record) for module in network.modules() if not list(module.children())]
    was_training = network.training
    try:
        network.eval()
        with torch.no_grad():
            try:
                network(torch.zeros(1, *input_shape, device=device))
            except RuntimeError as exc:  # torch's reason is one line, and says what did not fit
                size = "x".join(map(str, input_shape))
                raise SrpipeError(f"the network cannot take an input of {size} (C x H x W): "
                                  f"{str(exc).splitlines()[0]}; give another --input-size") from None
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    return calls


def summarize(network: nn.Module, input_shape: tuple[int, ...], model: str = "") -> Summary:
    """Analyse every leaf layer of ``network`` for one input of ``input_shape``."""
    window: Window | str | None = Window()  # FULL after a layer that sees everything; None: unknown
    layers = []
    for name, module, shape_in, shape_out in _record_forward(network, input_shape):
        kernel = stride = padding = dilation = formula = None
        macs = 0
        if isinstance(module, (nn.Conv2d, *POOLS)) and len(shape_in) == 3:
            kernel, stride, padding, dilation = _geometry(module)
            ceil = getattr(module, "ceil_mode", False)
            channels = module.out_channels if isinstance(module, nn.Conv2d) else shape_in[0]
            formula = (channels, *(conv_output_size(shape_in[1 + a], kernel[a], stride[a], padding[a],
                                                    dilation[a], ceil) for a in range(2)))
            window = window.after(kernel, stride, padding, dilation) if isinstance(window, Window) else window
            if isinstance(module, nn.Conv2d):
                macs = math.prod(shape_out) * (module.in_channels // module.groups) * math.prod(kernel)
        elif isinstance(module, nn.PixelShuffle) and isinstance(window, Window):
            r = module.upscale_factor
            formula = (shape_in[0] // (r * r), shape_in[1] * r, shape_in[2] * r)
            window = Window(window.size, tuple(j / r for j in window.jump),
                            tuple(s - j * Fraction(r - 1, 2 * r) for s, j in zip(window.start, window.jump)))
        elif isinstance(module, nn.Linear):
            formula = (*shape_in[:-1], module.out_features)
            macs = math.prod(shape_in) * module.out_features
            window = FULL if window is not None else None
        elif isinstance(module, nn.Flatten):
            formula = (math.prod(shape_in),)
            window = FULL if window is not None else None
        elif isinstance(module, SHAPE_PRESERVING):
            formula = shape_in
        elif shape_in != shape_out:
            window = None  # an unknown layer that changes the geometry
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        layers.append(Layer(
            name=name, type=type(module).__name__, kernel=kernel, stride=stride, padding=padding,
            dilation=dilation, input_shape=shape_in, output_shape=shape_out, formula_shape=formula,
            weights=weight.numel() if isinstance(weight, torch.Tensor) else 0,
            biases=bias.numel() if isinstance(bias, torch.Tensor) else 0,
            macs=macs,
            receptive_field=_receptive_field(window, input_shape),
            window=window if isinstance(window, Window) else None,
        ))
    params = list(network.parameters())
    biases = sum(p.numel() for n, p in network.named_parameters() if n.endswith("bias"))
    total = sum(p.numel() for p in params)
    return Summary(model=model, network=type(network).__name__, input_shape=tuple(input_shape), layers=layers,
                   parameters=total, weights=total - biases, biases=biases, macs=sum(layer.macs for layer in layers))
