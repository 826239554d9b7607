"""Choosing where models run."""

from __future__ import annotations

from srpipe.errors import SrpipeError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``auto`` is CUDA when a GPU is usable, else the CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SrpipeError("--device cuda was asked for but no CUDA GPU is usable here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise SrpipeError(f"unknown --device {name!r}; use auto, cpu or cuda")
    return name
