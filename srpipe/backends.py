"""Inference backends: what runs a neural upscaler's network, and how ``--backend`` picks one."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from srpipe.errors import PluginWarning, SrpipeError
from srpipe.models import check_upscaler
from srpipe.plugin_guard import exits_as_errors, plugin_code
from srpipe.registry import Registry

AUTO = "auto"


@dataclass(frozen=True)
class Backend:
    """An engine that runs the tiled part of an ESPCN-family network.

    ``prepare(network, device)`` returns a function equal to ``network.convolved`` (the
    ``torch.nn.Module``'s): float32 (N, C, h, w) in, (N, C, h*scale, w*scale) out, as
    contiguous numpy arrays on the CPU and torch tensors on CUDA. The upscaler keeps the
    tiling and the residual, so every backend stays tile-exact.
    ``load_prepared(key, device)``, when given, returns the function that an earlier
    ``prepare`` made for the network whose checkpoint digest is ``key``, or ``None``; such a
    backend is called as ``prepare(network, device, key=key)`` and keeps what it makes under
    ``key``. A later run then starts without torch (see ``srpipe.cache``). ``auto`` picks the
    available backend of the highest ``priority`` for the device. ``install_hint`` says what
    an unavailable one needs. ``tile`` is the largest piece, in LR pixels a side, the upscaler
    hands it at once: small tiles keep torch's activations in cache, engines that fuse the
    layers run whole frames fastest. ``exact``: its output equals the float network's within
    float rounding (an int8 engine's does not): ``--exact`` keeps ``auto`` to these.
    """

    name: str
    devices: tuple[str, ...]
    priority: int
    is_available: Callable[[], bool]
    prepare: Callable[[Any, str], Callable[[Any], Any]]
    description: str = ""
    install_hint: str = ""
    tile: int = 192
    load_prepared: Callable[[str, str], Callable[[Any], Any] | None] | None = None
    exact: bool = True
    plugin: str = field(default="", compare=False)


class BackendFailed(SrpipeError):
    """A backend that could not prepare a network (a plugin's engine without its library, say):
    ``--backend auto`` passes on to the next one (:func:`load_upscaler`); one the user named is an error."""

    def __init__(self, backend: Backend, exc: Exception):
        self.backend = backend
        self.reason = (f"backend {backend.name} (plugin {backend.plugin}) could not prepare the network: "
                       f"{type(exc).__name__}: {exc}")
        super().__init__(f"{self.reason}; use another --backend")


def numpy_io(convolved: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A torch function on CPU tensors as the CPU contract wants it: numpy arrays in and out."""
    import torch

    def on_arrays(x):
        with torch.inference_mode():
            return convolved(torch.from_numpy(x)).numpy()

    return on_arrays


class BackendRegistry(Registry[Backend]):
    """Backends by name, as the plugins registered them; iterated from the highest priority."""

    item_type = Backend
    what = "backend"
    reserved = frozenset({AUTO})

    def __init__(self):
        super().__init__()
        # Backends that failed here, already warned of, and unavailable from then on: their availability
        # check raised, or they could not prepare a network (set_aside)
        self._failed: set[str] = set()

    def check(self, backend: Backend) -> None:
        if isinstance(backend.priority, bool) or not isinstance(backend.priority, (int, float)):
            raise ValueError(f"backend {backend.name!r} has priority {backend.priority!r}; give a number")
        if isinstance(backend.devices, str) or not all(isinstance(device, str) for device in backend.devices):
            raise ValueError(f"backend {backend.name!r} has devices {backend.devices!r}; give a tuple such as ('cpu',)")

    def sort_key(self, backend: Backend):
        return (-backend.priority, backend.name)

    def available(self, backend: Backend) -> bool:
        """``backend.is_available()``; a plugin's that raises counts as unavailable, with a warning
        naming it (once a backend), so that the others still run, as does one set aside."""
        if backend.name in self._failed:
            return False
        try:
            return bool(backend.is_available())
        except Exception as exc:
            if backend.name not in self._failed:
                self._failed.add(backend.name)
                warnings.warn(f"backend {backend.name!r} of plugin {backend.plugin!r} could not tell whether it is "
                              f"available and is skipped: {type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
            return False

    def set_aside(self, failed: BackendFailed) -> None:
        """Count a backend that could not prepare a network as unavailable, with a warning: ``auto``
        then takes the next one, and no refusal suggests it."""
        self._failed.add(failed.backend.name)
        warnings.warn(f"{failed.reason}; --backend auto takes the next backend", PluginWarning, stacklevel=2)

    def select(self, name: str, device: str, exact: bool = False) -> Backend:
        """The backend ``name`` for ``device`` ("cpu", "cuda", "cuda:1"); ``auto`` is the
        available one of the highest priority there (with ``exact``, of the exact ones)."""
        kind = device.split(":")[0]
        if name == AUTO:
            for backend in self:
                if kind in backend.devices and self.available(backend) and (backend.exact or not exact):
                    return backend
            raise SrpipeError(f"no inference backend is available here for {device}")
        backend = self.find(name)
        if backend is None:
            known = ", ".join([AUTO, *(b.name for b in self)])
            raise SrpipeError(f"unknown backend {name!r}; available: {known}")
        if exact and not backend.exact:
            raise SrpipeError(f"--backend {name} is not exact; leave out --exact or pick another backend")
        if self.available(backend) and kind in backend.devices:
            return backend
        instead = f"use --backend {self.select(AUTO, device, exact).name}"
        if not self.available(backend):
            hint = f" ({backend.install_hint})" if backend.install_hint else ""
            raise SrpipeError(f"{name} is not available here{hint}; {instead}")
        raise SrpipeError(f"backend {name} runs on {', '.join(backend.devices)}, not {device}; {instead}")


def load_upscaler(spec, backends: BackendRegistry, *, scale, device: str, weights, backend: str = AUTO,
                  exact: bool = False):
    """``spec.load(...)``, checked to be an upscaler; a model that runs on a backend
    (``spec.accepts_backend``) gets the one ``backend`` names for ``device`` (``exact``: see
    :meth:`BackendRegistry.select`), and one that tells its reference output from a faster
    one (``spec.accepts_exact``) gets ``exact``. Under ``auto``, a backend that cannot prepare the
    network is named in a warning and the next one runs."""
    options = {"exact": exact} if spec.accepts_exact else {}
    failed = None  # the last backend that could not prepare the network, under auto
    while True:
        if spec.accepts_backend:
            try:
                options["backend"] = backends.select(backend, device, exact)
            except SrpipeError:
                if failed is None:
                    raise
                raise SrpipeError(f"{failed.reason}, and no other backend is available here for {device}") from failed
        try:
            with plugin_code(f"model {spec.name!r}"), exits_as_errors():
                upscaler = spec.load(scale=scale, device=device, weights=weights, **options)
            break
        except BackendFailed as exc:
            # One the user named stays an error; so does a failure of a backend other than the one given
            if backend != AUTO or exc.backend is not options.get("backend"):
                raise
            backends.set_aside(exc)
            failed = exc
    check_upscaler(upscaler, spec, scale)
    return upscaler
