"""Upscaler models: what a plugin registers and what the pipeline calls."""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import numpy as np

from srpipe.errors import SrpipeError
from srpipe.plugin_guard import exits_as_errors
from srpipe.registry import Registry


class Upscaler(Protocol):
    """A loaded model that upscales batches of luma planes by ``scale``.

    Besides ``scale`` and ``upscale``, srpipe reads the attributes of :class:`UpscalerTraits`
    where an upscaler has them; each is optional."""

    scale: int

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """Upscale ``luma`` of shape (N, H, W), uint8 or uint16 holding
        ``bit_depth``-bit samples, to (N, H*scale, W*scale) of the same dtype."""


@dataclass(frozen=True)
class UpscalerTraits:
    """The optional attributes of an :class:`Upscaler`, with what srpipe assumes without them."""

    #: what runs it ("cpu", "torch", "openvino-bf16", ...), shown in summaries and ``--json``
    backend: str | None = None
    #: bytes of working memory per output pixel beyond the input and output planes; the
    #: batch size is lowered to fit free memory by it
    working_bytes_per_output_pixel: int = 8
    #: a method ``working_bytes(frames, width, height) -> int``: the working memory of upscaling
    #: ``frames`` frames of width x height (the input's) at once, beyond their input and output
    #: planes, for a model whose memory does not grow with the whole batch (tiles, bands of rows,
    #: a few frames at a time); it stands in for ``working_bytes_per_output_pixel``
    working_bytes: Callable[[int, int, int], int] | None = None
    #: multiply-accumulates per input pixel, for ``srpipe bench``'s GFLOP/s; ``None``: not reported
    macs_per_lr_pixel: int | None = None
    #: how many input pixels away from an output pixel's own an input can still change it: the
    #: upscaler is then run only on the tiles whose input changed since the previous frame, each
    #: read with this margin (``srpipe.reuse``). It promises that a crop of the frame, upscaled,
    #: equals the whole frame's output farther than this from the crop's cut edges. ``None``:
    #: every frame is upscaled whole
    receptive_radius: int | None = None
    #: crops keep that promise only where they start a multiple of this many input pixels from the
    #: frame's top left (a network that works on blocks of pixels, one that starts with a pixel
    #: unshuffle): ``srpipe.reuse`` then starts each crop it reads there, and moves kept output
    #: only by multiples of it
    crop_alignment: int = 1
    #: an upscaler equal to this one on flat input (a residual network's bicubic), which
    #: ``srpipe.reuse`` runs on flat tiles instead; ``None``: none
    flat_path: Upscaler | None = None
    #: a method ``for_stream() -> Upscaler``: the upscaler for one new stream (a video, a camera,
    #: an image), sharing what was loaded, for an upscaler that keeps state across frames (a
    #: temporal network's earlier frames); srpipe calls it at the start of each. ``None``: the
    #: upscaler keeps no state across calls
    for_stream: Callable[[], Upscaler] | None = None
    #: its output gets closer to the truth as the mean over flipped and transposed views of the
    #: input (a learned network, which no flip leaves unchanged): a still picture is then run
    #: through as many of the eight views as :data:`srpipe.ensemble.ENSEMBLE_MACS` allows by
    #: its ``macs_per_lr_pixel``, unless ``--exact``
    self_ensemble: bool = False
    #: which of its variants ran, for an upscaler that settles one per stream (``"clean weights"``)
    #: or that a model loaded for the path asked for (``"fast network"``, see ``accepts_exact``),
    #: shown after the model's name in the summary line and ``--json``; ``None``: it has one
    variant: str | None = None

    @classmethod
    def of(cls, upscaler) -> UpscalerTraits:
        with exits_as_errors():  # a trait may be a property: a plugin's code
            return cls(**{f.name: getattr(upscaler, f.name) for f in fields(cls) if hasattr(upscaler, f.name)})

    def lend(self, wrapper, *names: str) -> None:
        """Give ``wrapper``, an upscaler that runs the one these traits are of, the traits
        ``names`` that one has (``None``: it has not, and the wrapper's default stands)."""
        for name in names:
            if getattr(self, name) is not None:
                setattr(wrapper, name, getattr(self, name))


def for_stream(upscaler: Upscaler, model: str) -> Upscaler:
    """``upscaler`` for a new stream: what its ``for_stream`` gives (:class:`UpscalerTraits`), or
    itself. ``model``: the model as errors name it (:func:`model_of_plugin`)."""
    start = UpscalerTraits.of(upscaler).for_stream
    if start is None:
        return upscaler
    with exits_as_errors():
        fresh = start()
    if getattr(fresh, "scale", None) != upscaler.scale or not callable(getattr(fresh, "upscale", None)):
        gave = "None" if fresh is None else f"a {type(fresh).__name__} of scale {getattr(fresh, 'scale', None)!r}"
        raise SrpipeError(f"the for_stream() of {model} gave {gave}, not an x{upscaler.scale} upscaler; report it to "
                          "the plugin's authors")
    return fresh


def model_of_plugin(spec: ModelSpec) -> str:
    """``spec`` as errors about what its plugin's code did name it: ``model 'M' of plugin 'P'``."""
    return f"model {spec.name!r} of plugin {spec.plugin!r}"


# The largest receptive radius and crop alignment accepted: tile reuse would run frames of 2K and
# most of 4K whole with a margin (or on a grid) wider than this, and keeps a (2r+1)^2 kernel of
# the radius: 10**9 asked for exabytes.
MOST_REUSE_PIXELS = 1024

# What a model's working_bytes() is asked about when it loads, to see that it gives a number of bytes
PLANNED_FRAME = (1, 1920, 1080)


def check_upscaler(upscaler, spec: ModelSpec, scale: int | None) -> None:
    """Refuse, naming the plugin, what a model's ``load`` returned if it is no upscaler, one of
    another scale than ``scale`` (``None``: the checkpoint's, any), one whose tile-reuse traits
    are not whole numbers tile reuse can use, or one whose memory traits are not numbers of
    bytes (a string of them made memory plans fail with an unexpected TypeError)."""
    # Python's int, not a bool or NumPy's (which the JSON of --json cannot hold: the run failed after
    # its output was written)
    scale_ok = type(getattr(upscaler, "scale", None)) is int
    if not (scale_ok and callable(getattr(upscaler, "upscale", None))):
        got = f" (its scale: {upscaler.scale!r}, of type {type(upscaler.scale).__name__})" \
            if hasattr(upscaler, "scale") and not scale_ok else ""
        raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} loaded a {type(upscaler).__name__}, which "
                          f"has no integer 'scale' (a Python int) and 'upscale' method{got}; report it to the "
                          "plugin's authors")
    if scale is not None and upscaler.scale != scale:
        raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} was asked for x{scale} but loaded an "
                          f"x{upscaler.scale} upscaler; report it to the plugin's authors")
    traits = UpscalerTraits.of(upscaler)
    for name, least in (("receptive_radius", 0), ("crop_alignment", 1)):
        value = getattr(traits, name)
        if name == "receptive_radius" and value is None:  # the default: no tile reuse
            continue
        if isinstance(value, bool) or not (isinstance(value, numbers.Integral) and least <= value <= MOST_REUSE_PIXELS):
            raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} declares {name} {value!r}, which is not "
                              f"a whole number from {least} to {MOST_REUSE_PIXELS}; report it to the plugin's authors")
    macs = traits.macs_per_lr_pixel  # it sets how many views of a picture run (srpipe.ensemble)
    if macs is not None and (isinstance(macs, bool) or not isinstance(macs, numbers.Integral) or macs < 1):
        raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} declares macs_per_lr_pixel {macs!r}, which "
                          "is not a whole number of at least 1; report it to the plugin's authors")
    if not isinstance(traits.self_ensemble, bool):
        raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} declares self_ensemble "
                          f"{traits.self_ensemble!r}, which is not True or False; report it to the plugin's authors")
    needs = {"working_bytes_per_output_pixel": traits.working_bytes_per_output_pixel}
    if traits.working_bytes is not None:
        with exits_as_errors():
            needs[f"working_bytes{PLANNED_FRAME}"] = traits.working_bytes(*PLANNED_FRAME)
    for name, value in needs.items():
        if isinstance(value, bool) or not (isinstance(value, numbers.Real) and 0 <= value < math.inf):
            raise SrpipeError(f"model {spec.name!r} of plugin {spec.plugin!r} declares {name} {value!r}, which is not "
                              "a number of bytes; report it to the plugin's authors")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    For ``kind="upscaler"``, ``load(scale=..., device=..., weights=...)`` returns an
    :class:`Upscaler`; ``weights`` is a checkpoint path or ``None`` for the model's
    own. With ``accepts_backend``, ``load`` also takes ``backend=``: the
    :class:`srpipe.backends.Backend` that ``--backend`` chose for the device; the
    upscaler names it in its ``backend`` attribute.
    Other kinds (``"classifier"``) define what their ``load`` returns.
    ``network(scale)``, when given, returns the model's ``torch.nn.Module``
    (for inspection tools).
    With ``accepts_exact``, ``load`` also takes ``exact=``: ``True`` under ``--exact``, where
    the model gives its reference output; a model that ships a faster approximation of itself
    for the default path (``espcn``'s fast network on the CPU) runs that only when it is ``False``.
    ``image_model`` names a model that stands in for this one on still images (``espcn``'s
    weights are trained for video, ``espcn-image``'s for pictures), where it has the scale and
    no ``--weights`` are given. ``near_lossless_model`` names one that stands in for it, in the
    same way, on video coded losslessly or nearly so (``Source.near_lossless``): ``espcn``'s video
    weights give up detail to undo compression that such a file does not have.
    ``coarse_quantizer_models`` are ``(QP, name)`` pairs of models that stand in for it, in the
    same way, on video coded at a mean quantizer (``Source.quantizer``, H.264's QP scale) of at
    least QP, the highest such QP's model running: ``espcn-lowbitrate`` is trained on what low
    bit rates leave, where ``espcn``'s video weights, trained over all of them, do less.
    ``uses_gpu`` says whether the model can use a CUDA GPU: ``--device auto`` then picks one
    where it is usable. Models that run as fast on the CPU (classical interpolation) say
    ``False``: ``auto`` is then the CPU, and torch is never imported to ask about CUDA.
    ``load`` is always called with keywords; ``device`` is ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
    (the user named a GPU).
    """

    name: str
    scales: tuple[int, ...]
    description: str
    load: Callable[..., Any]
    default_scale: int | None = None
    accepts_weights: bool = False
    accepts_backend: bool = False
    accepts_exact: bool = False
    kind: str = "upscaler"
    network: Callable[..., Any] | None = None
    uses_gpu: bool = True
    image_model: str | None = None
    near_lossless_model: str | None = None
    coarse_quantizer_models: tuple[tuple[float, str], ...] = ()
    plugin: str = field(default="", compare=False)

    def __post_init__(self):
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.scales):  # True is an int
            raise ValueError(f"model {self.name!r}: scales must be positive integers")
        if self.kind == "upscaler" and not self.scales:
            raise ValueError(f"upscaler {self.name!r} needs at least one scale")
        if self.default_scale is None and self.scales:
            object.__setattr__(self, "default_scale", self.scales[0])
        if self.scales and (isinstance(self.default_scale, bool) or self.default_scale not in self.scales):
            raise ValueError(f"model {self.name!r}: default_scale {self.default_scale} is not one of its scales")
        pairs = self.coarse_quantizer_models
        if not isinstance(pairs, tuple) or not all(
                isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], numbers.Real)
                and not isinstance(pair[0], bool) and isinstance(pair[1], str) for pair in pairs):
            raise ValueError(f"model {self.name!r}: coarse_quantizer_models must be (QP, model name) pairs")


class ModelRegistry(Registry[ModelSpec]):
    """Models by name, as the plugins registered them."""

    item_type = ModelSpec
    what = "model"

    def get(self, name: str, kind: str | None = None) -> ModelSpec:
        """The model called ``name``; with ``kind``, only a model of that kind."""
        spec = self.find(name)
        if spec is None or (kind is not None and spec.kind != kind):
            known = ", ".join(m.name for m in self if kind is None or m.kind == kind) or "none"
            what = f"{kind} " if kind else ""
            raise SrpipeError(f"unknown {what}model {name!r}; available: {known} (see 'srpipe models list')")
        return spec

    def for_images(self, spec: ModelSpec, scale: int | None, weights: str | None) -> ModelSpec:
        """The model to run on still images in place of ``spec`` (see ``ModelSpec.image_model``)."""
        return self._stand_in(spec, spec.image_model, scale, weights)

    def for_near_lossless(self, spec: ModelSpec, scale: int | None, weights: str | None) -> ModelSpec:
        """The model to run on near-lossless video in place of ``spec`` (``ModelSpec.near_lossless_model``)."""
        return self._stand_in(spec, spec.near_lossless_model, scale, weights)

    def for_quantizer(self, spec: ModelSpec, scale: int | None, weights: str | None,
                      quantizer: Callable[[], float | None]) -> ModelSpec:
        """The model to run in place of ``spec`` on video coded at the mean quantizer that
        ``quantizer()`` gives (None: not known), from ``ModelSpec.coarse_quantizer_models``; it
        is asked only where one of them could run."""
        stand_ins = [(least, stand_in) for least, name in spec.coarse_quantizer_models
                     if (stand_in := self._stand_in(spec, name, scale, weights)) is not spec]
        coded_at = quantizer() if stand_ins else None
        fitting = [(least, stand_in) for least, stand_in in stand_ins if coded_at is not None and coded_at >= least]
        return max(fitting, key=lambda pair: pair[0])[1] if fitting else spec

    def _stand_in(self, spec: ModelSpec, name: str | None, scale: int | None, weights: str | None) -> ModelSpec:
        stand_in = self.find(name) if name and weights is None else None
        if stand_in is None or stand_in.kind != "upscaler" or (scale or spec.default_scale) not in stand_in.scales:
            return spec
        return stand_in

    def upscaler(self, name: str, scale: int | None, weights: str | None) -> tuple[ModelSpec, int | None]:
        """The upscaler ``name`` and the scale to load it at. With ``weights`` the scale is
        left to the checkpoint (``None``) unless the user gave one."""
        spec = self.get(name, kind="upscaler")
        if weights is None:
            return spec, self.resolve_scale(spec, scale)
        if not spec.accepts_weights:
            raise SrpipeError(f"model {name!r} takes no --weights")
        if not os.path.isfile(weights):
            raise SrpipeError(f"weights file {weights} does not exist")
        if scale is None and len(spec.scales) == 1:  # espcn-x2: the name fixes the scale; the weights must match
            scale = spec.scales[0]
        return spec, scale

    def resolve_scale(self, spec: ModelSpec, scale: int | None) -> int:
        """The scale to use: the user's if the model supports it, else its default."""
        if scale is None:
            return spec.default_scale
        if scale not in spec.scales:
            supported = ", ".join(str(s) for s in spec.scales)
            family = re.sub(r"-x\d+$", "", spec.name)  # espcn-x2 is espcn at one scale
            if family != spec.name and family in self and scale in self.get(family).scales:
                hint = f"-m {family} -s {scale} has it"
            elif scale > max(spec.scales):
                hint = f"for more than x{max(spec.scales)}, upscale its output again"
            else:
                hint = "choose one of those"
            raise SrpipeError(f"model {spec.name!r} does not support --scale {scale}; it supports {supported}: {hint}")
        return scale
