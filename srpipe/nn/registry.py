"""Architectures by name, so that a checkpoint's ``arch`` and ``config`` rebuild its network.
Plugins add theirs through the ``register_networks`` hook."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from srpipe.plugins import collect, get_plugin_manager
from srpipe.registry import Registry


@dataclass(frozen=True)
class NetworkSpec:
    """An architecture: ``classes()`` returns ``(network class, config class)``, imported only
    when called. The network takes a config instance and keeps it as ``network.config``; the
    config class is a dataclass with ``from_dict(dict)``."""

    name: str
    classes: Callable[[], tuple[type, type]]
    plugin: str = field(default="", compare=False)


class NetworkRegistry(Registry[NetworkSpec]):
    item_type = NetworkSpec
    what = "architecture"


def collect_networks(pm) -> NetworkRegistry:
    """Every architecture the plugins of ``pm`` register."""
    return collect(pm, "register_networks", NetworkRegistry())


def networks() -> NetworkRegistry:
    """Every architecture the installed plugins register."""
    return collect_networks(get_plugin_manager())


def build_network(arch: str, config: dict):
    """A fresh network of architecture ``arch`` from its config dict."""
    registered = networks()
    spec = registered.find(arch)
    if spec is None:
        known = ", ".join(spec.name for spec in registered)
        raise ValueError(f"unknown architecture {arch!r}; known: {known}")
    network_class, config_class = spec.classes()
    return network_class(config_class.from_dict(config))


def describe(model) -> tuple[str, dict]:
    """The ``(arch, config dict)`` of a registered network."""
    for spec in networks():
        try:
            network_class = spec.classes()[0]
        except Exception:  # another plugin's network that cannot load here is not this one
            continue
        if type(model) is network_class:
            return spec.name, asdict(model.config)
    raise ValueError(f"{type(model).__name__} is not a registered architecture")
