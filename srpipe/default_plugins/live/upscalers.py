"""The upscalers the ``m`` key cycles through, loaded on first use and kept."""

from __future__ import annotations

import warnings

from srpipe.backends import AUTO, BackendRegistry, load_upscaler
from srpipe.errors import SrpipeError
from srpipe.models import ModelRegistry, Upscaler, for_stream, model_of_plugin
from srpipe.plugins import collect_backends, get_plugin_manager
from srpipe.reuse import TileReuse, with_reuse
from srpipe.upscaling import reuses_tiles


class UpscalerCycle:
    """Every registered upscaler that supports ``scale``, starting at ``first``; neural ones
    run on ``backend`` of ``backends`` (default: the plugins'). On the CPU, those that declare
    their receptive radius reuse unchanged tiles from frame to frame unless ``exact``
    (:mod:`srpipe.reuse`)."""

    def __init__(self, registry: ModelRegistry, first: str, scale: int | None, device: str, weights: str | None = None,
                 backends: BackendRegistry | None = None, backend: str = AUTO, exact: bool = False):
        spec, self.scale = registry.upscaler(first, scale, weights)
        self.device = device
        self.registry = registry
        self.backends = backends if backends is not None else collect_backends(get_plugin_manager())
        self.backend = backend
        self.exact = exact
        self.names = [first] + [
            m.name for m in registry if m.kind == "upscaler" and m.name != first and self.scale in m.scales
        ]
        self.index = 0
        self.frame_size: tuple[int, int] | None = None  # (width, height), once the source is open
        self._loaded: dict[str, Upscaler] = {first: self._load_spec(spec, weights)}
        self.scale = self._loaded[first].scale  # with --weights, the checkpoint's

    @property
    def name(self) -> str:
        return self.names[self.index]

    @property
    def upscaler(self) -> Upscaler:
        return self._loaded[self.name]

    def next(self) -> str:
        """Switch to the next upscaler that loads; one that fails is warned about and left out."""
        while True:
            self.index = (self.index + 1) % len(self.names)
            name = self.name
            if name in self._loaded:  # a model that keeps earlier frames starts again: those are from before the switch
                self._loaded[name] = for_stream(self._loaded[name], model_of_plugin(self.registry.get(name)))
                return name
            try:
                self._loaded[name] = self._load(name)
                return name
            except SrpipeError as exc:
                warnings.warn(f"model {name!r} is left out of the cycle: {exc}")
                del self.names[self.index]  # never the first model, which is loaded
                self.index -= 1

    def _load_spec(self, spec, weights: str | None) -> Upscaler:
        upscaler = for_stream(load_upscaler(spec, self.backends, scale=self.scale, device=self.device, weights=weights,
                                            backend=self.backend, exact=self.exact), model_of_plugin(spec))
        if reuses_tiles(upscaler, self.device, self.exact):
            upscaler = with_reuse(upscaler, name=spec.name)
        if isinstance(upscaler, TileReuse) and self.frame_size:
            upscaler.warm_up(*self.frame_size)
        return upscaler

    def warm_up(self, width: int, height: int) -> None:
        """Prepare the loaded upscalers, and those loaded later, for frames of this size
        (:meth:`srpipe.reuse.TileReuse.warm_up`): not while the first frames wait."""
        self.frame_size = (width, height)
        for upscaler in self._loaded.values():
            if isinstance(upscaler, TileReuse):
                upscaler.warm_up(width, height)

    @property
    def reused(self) -> float | None:
        """The share of the last frame's tiles the current upscaler reused; None without reuse."""
        upscaler = self.upscaler
        return upscaler.stats.last_reused if isinstance(upscaler, TileReuse) else None

    @property
    def deferred(self) -> float | None:
        """The share of the last frame's tiles left to later frames for want of time; None without reuse."""
        upscaler = self.upscaler
        return upscaler.stats.last_deferred if isinstance(upscaler, TileReuse) else None

    def _load(self, name: str) -> Upscaler:
        upscaler = self._load_spec(self.registry.get(name), None)
        if upscaler.scale != self.scale:
            raise SrpipeError(f"it upscales x{upscaler.scale}, not x{self.scale}")
        return upscaler
