"""Upscaler models: what a plugin registers and what the pipeline calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from srpipe.errors import SrpipeError


class Upscaler(Protocol):
    """A loaded model that upscales batches of luma planes by ``scale``."""

    scale: int

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """Upscale ``luma`` of shape (N, H, W), uint8 or uint16 holding
        ``bit_depth``-bit samples, to (N, H*scale, W*scale) of the same dtype."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    ``load(scale=..., device=..., weights=...)`` returns an :class:`Upscaler`;
    ``weights`` is a checkpoint path or ``None`` for the model's own.
    """

    name: str
    scales: tuple[int, ...]
    description: str
    load: Callable[..., Upscaler]
    default_scale: int | None = None
    accepts_weights: bool = False
    plugin: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.scales or any(not isinstance(s, int) or s < 1 for s in self.scales):
            raise ValueError(f"model {self.name!r}: scales must be positive integers")
        if self.default_scale is None:
            object.__setattr__(self, "default_scale", self.scales[0])


class ModelRegistry:
    """Models by name, as the plugins registered them."""

    def __init__(self):
        self._models: dict[str, ModelSpec] = {}

    def register(self, spec: ModelSpec, plugin: str) -> None:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"register() takes a srpipe.models.ModelSpec, not {type(spec).__name__}")
        if spec.name in self._models:
            other = self._models[spec.name].plugin
            raise ValueError(f"model {spec.name!r} is already registered by plugin {other!r}")
        self._models[spec.name] = ModelSpec(**{**spec.__dict__, "plugin": plugin})

    def __iter__(self):
        return iter(sorted(self._models.values(), key=lambda m: m.name))

    def __contains__(self, name: str) -> bool:
        return name in self._models

    def get(self, name: str) -> ModelSpec:
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise SrpipeError(
                f"unknown model {name!r}; available: {known} (see 'srpipe models list')"
            ) from None

    def resolve_scale(self, spec: ModelSpec, scale: int | None) -> int:
        """The scale to use: the user's if the model supports it, else its default."""
        if scale is None:
            return spec.default_scale
        if scale not in spec.scales:
            supported = ", ".join(str(s) for s in spec.scales)
            raise SrpipeError(
                f"model {spec.name!r} does not support --scale {scale}; it supports {supported}"
            )
        return scale
