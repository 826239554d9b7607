"""Architectures by name, so that a checkpoint's ``arch`` and ``config`` rebuild its network."""

from __future__ import annotations

from dataclasses import asdict

from torch import nn

from srpipe.nn.classifier_nets import LeNet, LeNetConfig, SmallCNN, SmallCNNConfig
from srpipe.nn.espcn import ESPCN, ESPCNConfig

ARCHS: dict[str, tuple[type[nn.Module], type]] = {
    "espcn": (ESPCN, ESPCNConfig),
    "small-cnn": (SmallCNN, SmallCNNConfig),
    "lenet": (LeNet, LeNetConfig),
}


def build_network(arch: str, config: dict) -> nn.Module:
    """A fresh network of architecture ``arch`` from its config dict."""
    try:
        cls, cfg_cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}") from None
    return cls(cfg_cls.from_dict(config))


def describe(model: nn.Module) -> tuple[str, dict]:
    """The ``(arch, config dict)`` of a registered network."""
    for name, (cls, _) in ARCHS.items():
        if type(model) is cls:
            return name, asdict(model.config)
    raise ValueError(f"{type(model).__name__} is not a registered architecture")
